#include "lca/atomic_file.hpp"

#include "lca/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

namespace lca {
namespace {

namespace fs = std::filesystem;

std::string directory_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

/// fsync through a fresh descriptor; returns 0 or the errno of the failure.
int sync_by_name(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0)
    err = errno;
  return err;
}

} // namespace

std::string errno_reason(int err) {
  std::string s = std::strerror(err);
  // "No space left on device" -> "no space left on device", but keep "I/O error" as it is.
  if (s.size() > 1 && std::isupper(static_cast<unsigned char>(s[0])) &&
      std::islower(static_cast<unsigned char>(s[1])))
    s[0] = char(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string atomic_temp_path(const std::string& path) {
  const fs::path target(path);
  return (fs::path(directory_of(path)) /
          ("." + target.filename().string() + ".tmp." + std::to_string(::getpid())))
      .string();
}

AtomicFile::AtomicFile(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)), tmp_(atomic_temp_path(path_)) {
  if (fs::path(path_).filename().empty())
    fail("not a file name");
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0)
    fail(errno_reason(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!committed_)
    ::unlink(tmp_.c_str()); // may not exist (creation failed); nothing else to undo
}

void AtomicFile::fail(const std::string& reason) const {
  throw IoError("cannot write " + what_ + " " + path_ + ": " + reason);
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0)
    fail("already closed");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(errno_reason(errno));
    }
    p += n;
    size -= std::size_t(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0)
    fail("already closed");
  // A tool writing by name may have replaced the temp file instead of refilling it: then sync
  // the file that is there now.
  struct stat mine {
  }, named{};
  if (::fstat(fd_, &mine) != 0 || ::stat(tmp_.c_str(), &named) != 0)
    fail(errno_reason(errno));
  int err = 0;
  if (mine.st_ino == named.st_ino && mine.st_dev == named.st_dev)
    err = ::fsync(fd_) == 0 ? 0 : errno;
  else
    err = sync_by_name(tmp_, O_RDONLY);
  // close() reports delayed write errors on some file systems (NFS): check it too.
  if (::close(std::exchange(fd_, -1)) != 0 && err == 0)
    err = errno;
  if (err != 0)
    fail(errno_reason(err));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(errno_reason(errno));
  committed_ = true;
  // Make the rename itself durable.
  if (const int e = sync_by_name(directory_of(path_), O_RDONLY | O_DIRECTORY); e != 0)
    fail("cannot sync its directory (" + errno_reason(e) + ")");
}

void write_file_atomically(const std::string& path, const std::string& what,
                           std::string_view bytes) {
  AtomicFile out(path, what);
  out.write(bytes);
  out.commit();
}

} // namespace lca
