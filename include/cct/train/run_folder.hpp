// A training run's output folder: the names of the files a run writes there, creating the folder before
// any work starts (so an unwritable --out fails at once), and the saved settings that --resume reads.
//
//   config.json         the run's settings                 metrics.jsonl   one JSON line per epoch
//   last.safetensors    checkpoint after the latest epoch  best.safetensors  the best validation epoch
//   curves.svg          loss and accuracy per epoch        final.json      the test result at the end
//   confusion_matrix.svg  the test set's confusion matrix
//   .lock               held (flock) while a run writes here, so two runs never share a folder
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "../config.hpp"
#include "../io/atomic_file.hpp"
#include "../io/json.hpp"

namespace cct::train {

class RunFolder {
 public:
  // Checks `path` (not empty, not the file-system root, not a file) and creates it with its parents.
  explicit RunFolder(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    if (path_.empty())
      throw IoError("the output folder is empty: give a folder name (the trainers' --out, e.g. --out runs/my_run)");
    std::error_code error;
    const fs::path absolute = fs::absolute(fs::path(path_), error);
    if (!error && absolute.lexically_normal() == absolute.root_path())
      throw IoError("the output folder '" + path_ + "' is the file-system root; give a folder of its own (the trainers' --out)");
    // Walk down from the first missing parent, so the error names the part that is not a folder.
    fs::path partial;
    for (const fs::path& part : fs::path(path_)) {
      partial /= part;
      if (part.empty() || part == "." || part == "..") continue;
      const fs::file_status status = fs::status(partial, error);
      if (fs::exists(status)) {
        if (!fs::is_directory(status))
          throw IoError("cannot use output folder '" + path_ + "': '" + partial.string() + "' exists and is not a folder");
        continue;
      }
      if (!fs::create_directory(partial, error) && error)
        throw IoError("cannot create output folder '" + partial.string() + "': " + error.message());
    }
  }

  RunFolder(RunFolder&& other) noexcept : path_(std::move(other.path_)), lock_fd_(std::exchange(other.lock_fd_, -1)) {}
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;
  RunFolder& operator=(RunFolder&&) = delete;
  ~RunFolder() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
  }

  // Takes the folder's advisory lock for as long as this object lives, or refuses with the process
  // that holds it. The kernel drops the lock when a process dies, so a crashed run never blocks.
  void lock() {
    if (lock_fd_ >= 0) return;
    const std::string path = file(".lock");
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw IoError("cannot create the lock file '" + path + "': " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      char holder[32] = {0};
      const ssize_t got = ::pread(fd, holder, sizeof(holder) - 1, 0);
      ::close(fd);
      std::string pid = got > 0 ? std::string(holder, static_cast<size_t>(got)) : std::string();
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      if (error == EWOULDBLOCK)
        throw IoError("output folder '" + path_ + "' is in use by another training run" +
                      (pid.empty() ? std::string() : " (process " + pid + ")") +
                      "; wait for it to finish, or pass another --out");
      throw IoError("cannot lock '" + path + "': " + std::strerror(error));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The lock holds without the note of who holds it.
    }
    lock_fd_ = fd;
  }

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string config_path() const { return file("config.json"); }
  std::string last_checkpoint() const { return file("last.safetensors"); }
  std::string best_checkpoint() const { return file("best.safetensors"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string curves_path() const { return file("curves.svg"); }
  std::string final_path() const { return file("final.json"); }
  std::string confusion_path() const { return file("confusion_matrix.svg"); }

  bool has(const std::string& name) const {
    std::error_code error;
    return std::filesystem::exists(file(name), error);
  }

  // Writes config.json atomically (so a crash never leaves half of it).
  void write_config(const json::Object& settings) const {
    io::write_file_atomic(config_path(), json::dump(json::Value(settings), 2) + "\n");
  }

  // The settings of the run to resume: config.json, which must exist beside last.safetensors.
  static json::Object read_saved_config(const std::string& path) {
    const std::string last = path + "/last.safetensors", config = path + "/config.json";
    std::error_code error;
    if (!std::filesystem::exists(last, error))
      throw IoError("--resume: no checkpoint '" + last + "' to resume from (start without --resume)");
    const json::Value parsed = json::parse(io::read_file(config));
    if (!parsed.is_object()) throw IoError("--resume: '" + config + "' does not hold a JSON object of settings");
    return parsed.as_object();
  }

 private:
  std::string path_;
  int lock_fd_ = -1;
};

}  // namespace cct::train
