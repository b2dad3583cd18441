// Crash-safe file replacement (write "<path>.tmp.<pid>", fsync, rename over path) and checked reads.
//
// rename(2) within one directory is atomic on POSIX file systems, so a reader (or a crash) sees either
// the old file or the complete new one, never a half-written checkpoint. Every failure throws
// cct::IoError naming the path and the system's reason, and removes the temporary file.
// POSIX only (open/write/fsync/rename), which is what cct targets.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "../config.hpp"
#include "input_file.hpp"

namespace cct::io {

namespace detail {
inline std::string errno_text(int error) { return std::system_category().message(error); }
}  // namespace detail

// Streams bytes into a temporary file next to `path`; commit() publishes it under `path`. Destroying
// the writer without committing (an exception while producing the data) removes the temporary file
// and leaves any existing file at `path` untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path)
      : path_(std::move(path)), temp_path_(path_ + ".tmp." + std::to_string(::getpid())) {
    if (path_.empty()) throw IoError("cannot write a file with an empty path");
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int error = errno;
      throw IoError("cannot write '" + path_ + "': cannot create the temporary file '" + temp_path_ +
                    "': " + detail::errno_text(error));
    }
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() { discard(); }

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

  void write(const void* data, size_t size) {
    if (fd_ < 0) throw IoError("cannot write '" + path_ + "': the writer was already committed or failed");
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t written = ::write(fd_, bytes, size);
      if (written < 0) {
        const int error = errno;
        if (error == EINTR) continue;
        fail("writing the temporary file '" + temp_path_ + "' failed", error);
      }
      bytes += written;
      size -= static_cast<size_t>(written);
    }
  }
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

  // Flushes the data to disk, then renames the temporary file over `path` (and syncs the directory so
  // the rename itself survives a power loss).
  void commit() {
    if (fd_ < 0) throw IoError("cannot write '" + path_ + "': the writer was already committed or failed");
    // errno is read before building the message: allocation may overwrite it.
    if (::fsync(fd_) != 0) {
      const int error = errno;
      fail("fsync of the temporary file '" + temp_path_ + "' failed", error);
    }
    if (::close(std::exchange(fd_, -1)) != 0) {
      const int error = errno;
      fail("closing the temporary file '" + temp_path_ + "' failed", error);
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
      const int error = errno;
      fail("renaming '" + temp_path_ + "' over it failed", error);
    }
    committed_ = true;
    sync_directory();
  }

 private:
  [[noreturn]] void fail(const std::string& what, int error) {
    discard();
    throw IoError("cannot write '" + path_ + "': " + what + ": " + detail::errno_text(error));
  }

  void discard() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    if (!committed_) {
      ::unlink(temp_path_.c_str());
      committed_ = true;  // nothing left to clean up
    }
  }

  // Best effort: some file systems refuse to fsync a directory, and the data is already renamed.
  void sync_directory() const {
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    const std::string directory = parent.empty() ? "." : parent.string();
    const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
  }

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Replaces (or creates) the file at `path` with exactly `bytes`, atomically.
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

// The whole content of a regular file; throws cct::IoError naming the path when it is missing, not a
// regular file, larger than `max_bytes`, or unreadable.
inline std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t{1} << 32) {
  const InputFile file(path);
  const int fd = file.fd();
  const uint64_t size = file.size();
  if (size > max_bytes)
    throw IoError("cannot read '" + path + "': its " + std::to_string(size) + " bytes exceed the limit of " +
                  std::to_string(max_bytes));
  std::string content(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t got = ::read(fd, content.data() + done, content.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      throw IoError("cannot read '" + path + "': " + detail::errno_text(error));
    }
    if (got == 0) throw IoError("cannot read '" + path + "': the file shrank while it was being read");
    done += static_cast<size_t>(got);
  }
  return content;
}

}  // namespace cct::io
