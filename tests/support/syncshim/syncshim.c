/* An LD_PRELOAD shim around fdatasync, fsync and msync, for durability tests.
 *
 *   SLUICE_SYNCSHIM_FAIL_AFTER=N  the first N calls go through; every later one fails with EIO
 *                                 without reaching the kernel.
 *   SLUICE_SYNCSHIM_FAIL_FILE=path  every call fails with EIO while `path` exists (a test creates
 *                                 it when the disk is to "fill" and removes it to "free" it).
 *   SLUICE_SYNCSHIM_LOG=path      one line "sync <ns>" per call is appended to path, after the
 *                                 real call returned; <ns> is CLOCK_MONOTONIC when the call
 *                                 began. O_APPEND and one write(2) per line, so lines written
 *                                 to the same file by the process under test keep their order.
 *
 * Calls are counted across threads. Failed calls are logged too ("sync-failed <ns>").
 * LMDB writes its meta page through an O_DSYNC descriptor, which no sync call covers: a
 * "sync" line means the data pages of a commit are on disk, the step before the meta page. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static atomic_long calls;
/* Resolved by the constructor, before the process under test starts threads. */
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_msync)(void*, size_t, int);
static long fail_after = -1; /* < 0: never fail */
static int log_fd = -1;
static const char* fail_file = NULL;

static void* next_symbol(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    abort(); /* the real call is missing: no honest way on */
  }
  return f;
}

__attribute__((constructor)) static void syncshim_init(void) {
  real_fdatasync = (int (*)(int))next_symbol("fdatasync");
  real_fsync = (int (*)(int))next_symbol("fsync");
  real_msync = (int (*)(void*, size_t, int))next_symbol("msync");
  const char* n = getenv("SLUICE_SYNCSHIM_FAIL_AFTER");
  if (n != NULL && *n != '\0') {
    fail_after = strtol(n, NULL, 10);
  }
  const char* f = getenv("SLUICE_SYNCSHIM_FAIL_FILE");
  if (f != NULL && *f != '\0') {
    fail_file = f;
  }
  const char* path = getenv("SLUICE_SYNCSHIM_LOG");
  if (path != NULL && *path != '\0') {
    log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void log_line(const char* what, long long began_ns) {
  if (log_fd < 0) {
    return;
  }
  char line[64];
  int len = snprintf(line, sizeof line, "%s %lld\n", what, began_ns);
  int saved = errno;
  if (len > 0 && write(log_fd, line, (size_t)len) < 0) {
    /* Nothing sensible to do: the test reading the log will see a missing line. */
  }
  errno = saved;
}

/* True if this call must fail (counts it). */
static int should_fail(void) {
  long n = atomic_fetch_add(&calls, 1) + 1;
  if (fail_file != NULL && access(fail_file, F_OK) == 0) {
    return 1;
  }
  return fail_after >= 0 && n > fail_after;
}

#define SYNCSHIM_WRAP(call)                          \
  long long began = now_ns();                        \
  if (should_fail()) {                               \
    log_line("sync-failed", began);                  \
    errno = EIO;                                     \
    return -1;                                       \
  }                                                  \
  int rc = call;                                     \
  log_line(rc == 0 ? "sync" : "sync-failed", began); \
  return rc;

int fdatasync(int fd) { SYNCSHIM_WRAP(real_fdatasync(fd)) }

int fsync(int fd) { SYNCSHIM_WRAP(real_fsync(fd)) }

int msync(void* addr, size_t length, int flags) { SYNCSHIM_WRAP(real_msync(addr, length, flags)) }
