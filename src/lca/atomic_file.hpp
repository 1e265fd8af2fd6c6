#pragma once
// The one way every output file is written (checkpoints, results and sweep files, tables,
// plot data and scripts, PNGs): all or nothing.
//
// AtomicFile creates a temp file "<dir>/.<name>.tmp.<pid>" beside the target; write() appends
// to it; commit() fsyncs and closes it, renames it onto the target and fsyncs the directory.
// A crash at any moment leaves the previous file or the new one, never a partial one; without
// commit() (an exception, an error) the destructor removes the temp file and the target is
// untouched. Every failure is one IoError line naming the target and the reason from errno:
// "cannot write checkpoint results/ck.h5: no space left on device".
#include <cstddef>
#include <string>
#include <string_view>

namespace lca {

class AtomicFile {
public:
  /// Creates the temp file. `what` names the kind of file in messages ("checkpoint", "PNG").
  AtomicFile(std::string path, std::string what);
  ~AtomicFile(); ///< removes the temp file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  /// fsync, close, rename onto the target, fsync the directory. Call once, last.
  void commit();

  const std::string& path() const { return path_; }
  /// For a tool that writes the file by name (gnuplot): it must truncate and fill this file,
  /// not replace it; commit() then syncs whatever it wrote.
  const std::string& temp_path() const { return tmp_; }
  /// Throws IoError "cannot write <what> <path>: <reason>".
  [[noreturn]] void fail(const std::string& reason) const;

private:
  std::string path_, what_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// AtomicFile with the whole content at once.
void write_file_atomically(const std::string& path, const std::string& what,
                           std::string_view bytes);

/// The temp file AtomicFile uses for `path`: "<dir>/.<name>.tmp.<pid>".
std::string atomic_temp_path(const std::string& path);

/// strerror(err) as part of a sentence: "no space left on device".
std::string errno_reason(int err);

} // namespace lca
