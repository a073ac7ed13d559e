#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

Result<void> fsync_directory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return fail(Errc::kIo, "open directory " + dir.string() + ": " + errno_text(errno));
  }
  if (::fsync(fd.get()) != 0) {
    return fail(Errc::kIo, "fsync directory " + dir.string() + ": " + errno_text(errno));
  }
  return {};
}

Result<void> write_file_durable(const std::filesystem::path& path, std::string_view data,
                                int mode) {
  std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  // Appended piecewise: g++ 12 at -O3 misreads "." + string as an overlapping copy.
  std::string tmp_name = ".";
  tmp_name += path.filename().string();
  tmp_name += ".tmp";
  std::filesystem::path tmp = dir / tmp_name;
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    return fail(Errc::kIo, "create " + tmp.string() + ": " + errno_text(errno));
  }
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::unlink(tmp.c_str());
      return fail(Errc::kIo, "write " + tmp.string() + ": " + errno_text(err));
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0 || ::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(Errc::kIo, "fsync " + tmp.string() + ": " + errno_text(err));
  }
  if (::close(fd.release()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(Errc::kIo, "close " + tmp.string() + ": " + errno_text(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(Errc::kIo, "rename to " + path.string() + ": " + errno_text(err));
  }
  return fsync_directory(dir);
}

Result<void> rename_durable(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return fail(Errc::kIo,
                "rename " + from.string() + " to " + to.string() + ": " + errno_text(errno));
  }
  std::filesystem::path to_dir = to.parent_path().empty() ? "." : to.parent_path();
  std::filesystem::path from_dir = from.parent_path().empty() ? "." : from.parent_path();
  if (auto r = fsync_directory(to_dir); !r) {
    return r;
  }
  if (from_dir != to_dir) {
    return fsync_directory(from_dir);
  }
  return {};
}

namespace {

// Reads the open file `fd` (stat `st`) whole.
Result<std::string> read_open_file(const Fd& fd, const struct stat& st,
                                   const std::filesystem::path& path, std::size_t max_bytes) {
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return fail(Errc::kTooLarge, path.string() + " is " + std::to_string(st.st_size) +
                                     " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + off, out.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::kIo, "read " + path.string() + ": " + errno_text(errno));
    }
    if (n == 0) {
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  out.resize(off);
  return out;
}

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return fail(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                "open " + path.string() + ": " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return fail(Errc::kIo, "stat " + path.string() + ": " + errno_text(errno));
  }
  return read_open_file(fd, st, path, max_bytes);
}

Result<std::string> read_dropped_file(const std::filesystem::path& path, std::size_t max_bytes,
                                      std::optional<unsigned> owner_uid) {
  // O_NONBLOCK: a FIFO planted in the directory must not hang the reader on open.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ELOOP) {
      return fail(Errc::kInvalidArgument,
                  path.filename().string() + " is a symbolic link; only regular files are read");
    }
    return fail(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                "open " + path.string() + ": " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return fail(Errc::kIo, "stat " + path.string() + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument,
                path.filename().string() + " is not a regular file; only regular files are read");
  }
  if (st.st_nlink != 1) {
    return fail(Errc::kInvalidArgument, path.filename().string() + " has " +
                                            std::to_string(st.st_nlink) +
                                            " hard links; only a file with a single link is read");
  }
  if (owner_uid && st.st_uid != *owner_uid) {
    return fail(Errc::kInvalidArgument,
                path.filename().string() + " is owned by uid " + std::to_string(st.st_uid) +
                    ", not by the configured owner (uid " + std::to_string(*owner_uid) + ")");
  }
  return read_open_file(fd, st, path, max_bytes);
}

}  // namespace sluice
