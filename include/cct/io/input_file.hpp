// The one way cct opens a file it reads: refuses anything but a regular file (a FIFO, a device, a
// folder) with an error naming the path, and never blocks doing so. open() of a FIFO waits for a
// writer, so the file is opened non-blocking, checked with fstat, and only then switched to blocking
// reads. Every reader (safetensors, CIFAR, IDX, images, text, word vectors, JSON) opens through here.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

#include "../config.hpp"

namespace cct::io {

class InputFile {
 public:
  InputFile() = default;
  // `what` names the kind of file in messages ("safetensors file", "GloVe file"; default "file").
  explicit InputFile(const std::string& path, const std::string& what = "file") : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd_ < 0) fail(what, "cannot open", errno);
    struct stat info {};
    if (::fstat(fd_, &info) != 0) fail(what, "cannot stat", errno);
    if (!S_ISREG(info.st_mode)) {
      const char* kind = S_ISDIR(info.st_mode)    ? "a folder"
                         : S_ISFIFO(info.st_mode) ? "a FIFO (named pipe)"
                         : S_ISCHR(info.st_mode) || S_ISBLK(info.st_mode) ? "a device"
                         : S_ISSOCK(info.st_mode) ? "a socket"
                                                  : "not a regular file";
      close();
      throw IoError("cannot read " + what + " '" + path + "': it is " + kind + ", not a regular file");
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) fail(what, "cannot read", errno);
    size_ = static_cast<uint64_t>(info.st_size);
  }
  InputFile(InputFile&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), size_(other.size_), stream_(std::exchange(other.stream_, nullptr)) {}
  InputFile& operator=(InputFile&& other) noexcept {
    if (this != &other) {
      close();
      path_ = std::move(other.path_);
      fd_ = std::exchange(other.fd_, -1);
      size_ = other.size_;
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { close(); }

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // at opening
  const std::string& path() const { return path_; }

  // The next line without its line ending ("\n" or "\r\n"); false at the end of the file. Lines are
  // read one at a time, so a large text file (word vectors) never sits in memory whole.
  bool read_line(std::string& line) {
    if (!stream_) {
      stream_ = ::fdopen(fd_, "rb");
      if (!stream_) throw IoError("cannot read '" + path_ + "': " + std::system_category().message(errno));
    }
    line.clear();
    for (int c; (c = std::getc(stream_)) != EOF;) {
      if (c == '\n') {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
      }
      line.push_back(static_cast<char>(c));
    }
    if (std::ferror(stream_)) throw IoError("cannot read '" + path_ + "': read error");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return !line.empty();
  }

 private:
  [[noreturn]] void fail(const std::string& what, const char* action, int error) {
    close();
    throw IoError(std::string(action) + " " + what + " '" + path_ + "': " + std::system_category().message(error));
  }
  void close() {
    if (stream_) std::fclose(stream_);  // closes fd_ too
    else if (fd_ >= 0) ::close(fd_);
    stream_ = nullptr;
    fd_ = -1;
  }

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  FILE* stream_ = nullptr;
};

}  // namespace cct::io
