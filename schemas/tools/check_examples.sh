#!/bin/sh
# Checks every example in schemas/examples against schemas/examples/expectations.tsv.
#
#   schemas/tools/check_examples.sh [SCHEMAS_DIR]      (default: the folder above this script)
#
# For each line of expectations.tsv (path, expect, field, reason):
#   valid, semantic  xmllint --schema envelope-1.xsd must accept the file;
#   xsd              xmllint must reject it with a validation error (exit 3, not a parse
#                    error) and its message must name the element in `field`.
# Then, when python3 is available, tools/semantic_check.py (the reference implementation
# of the checks XSD cannot make) must find no violation in `valid` files and, in each
# `semantic` file, violations of `field` only.
# Also fails when an example file is not listed, a listed file is missing, or any schema
# or example contains a DOCTYPE. Exit status 0 when everything matches, 1 otherwise.
set -u

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-"$here/.."}
dir=$(cd "$dir" && pwd)
ex="$dir/examples"
tsv="$ex/expectations.tsv"
xsd="$dir/envelope-1.xsd"
tab=$(printf '\t')
fail=0
count=0

if grep -l '<!DOCTYPE' "$dir"/*.xsd "$ex"/*/*.xml 2>/dev/null; then
  echo "FAIL: the files above contain a DOCTYPE"
  fail=1
fi

# Every example file is listed exactly once, every listed file exists.
listed=$(grep -v '^#' "$tsv" | cut -f1 | sort)
present=$(cd "$ex" && find . -name '*.xml' | sed 's|^\./||' | sort)
dups=$(printf '%s\n' "$listed" | uniq -d)
if [ -n "$dups" ]; then
  echo "FAIL: listed more than once in expectations.tsv:"; printf '%s\n' "$dups"; fail=1
fi
unlisted=$(printf '%s\n' "$present" | while read -r p; do
  printf '%s\n' "$listed" | grep -qxF "$p" || printf '%s\n' "$p"; done)
if [ -n "$unlisted" ]; then
  echo "FAIL: example files not in expectations.tsv:"; printf '%s\n' "$unlisted"; fail=1
fi

while IFS="$tab" read -r path expect field reason; do
  case "$path" in '#'*|'') continue ;; esac
  count=$((count + 1))
  file="$ex/$path"
  if [ ! -f "$file" ]; then
    echo "FAIL $path: listed but missing"; fail=1; continue
  fi
  if [ -z "$field" ] || [ -z "$reason" ]; then
    echo "FAIL $path: field or reason column empty"; fail=1
  fi
  out=$(xmllint --noout --nonet --schema "$xsd" "$file" 2>&1)
  rc=$?
  case "$expect" in
    valid|semantic)
      if [ "$rc" -ne 0 ]; then
        echo "FAIL $path: expected XSD-valid ($expect), xmllint exit $rc:"
        printf '%s\n' "$out" | head -n 5
        fail=1
      fi
      ;;
    xsd)
      if [ "$rc" -eq 0 ]; then
        echo "FAIL $path: expected xmllint to reject it ($reason), but it validates"
        fail=1
      elif [ "$rc" -ne 3 ]; then
        echo "FAIL $path: expected a validation error (exit 3), got exit $rc:"
        printf '%s\n' "$out" | head -n 5
        fail=1
      elif ! printf '%s\n' "$out" | grep -Eq "\}$field(['[:space:]]|$)"; then
        echo "FAIL $path: rejected, but not for element $field:"
        printf '%s\n' "$out" | head -n 5
        fail=1
      fi
      ;;
    *)
      echo "FAIL $path: unknown expectation '$expect'"; fail=1 ;;
  esac
done < "$tsv"

if command -v python3 >/dev/null 2>&1; then
  while IFS="$tab" read -r path expect field reason; do
    case "$path" in '#'*|'') continue ;; esac
    case "$expect" in valid|semantic) ;; *) continue ;; esac
    found=$(python3 "$here/semantic_check.py" "$dir" "$ex/$path" | cut -f2 | sort -u)
    if [ "$expect" = valid ] && [ -n "$found" ]; then
      echo "FAIL $path: valid example violates semantic rules on: $found"; fail=1
    elif [ "$expect" = semantic ] && [ "$found" != "$field" ]; then
      echo "FAIL $path: expected a semantic violation on $field only, found: ${found:-none}"; fail=1
    fi
  done < "$tsv"
else
  echo "note: python3 not found, semantic reference checks skipped"
fi

if [ "$fail" -ne 0 ]; then
  echo "check_examples: FAILED ($count examples)"
  exit 1
fi
echo "check_examples: OK ($count examples)"
