// Replays the fuzzers' inputs through the same entry points under the normal build: every file under
// fuzz/regressions/<target>/ (inputs that once crashed or hung a reader) must now be handled cleanly,
// i.e. accepted or refused with a cct::Error; every seed under fuzz/corpus/<target>/ (small valid files)
// must be accepted, which keeps the seeds meaningful as the readers change.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "../fuzz/fuzz_targets.hpp"
#include "test_helpers.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_bytes(const fs::path& path) { return cct::io::read_file(path.string()); }

const fs::path kFuzzRoot = fs::path(CCT_SOURCE_DIR) / "fuzz";

}  // namespace

TEST_CASE("fuzz regressions: every saved crashing input is now accepted or refused with cct::Error", "[fuzz]") {
  int64_t replayed = 0;
  for (const auto& target : cct::fuzz::targets()) {
    for (const fs::path& file : files_in(kFuzzRoot / "regressions" / target.name)) {
      INFO("target " << target.name << ", input " << file.string());
      const std::string bytes = read_bytes(file);
      CHECK_NOTHROW(cct::fuzz::run_target(target.run, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      ++replayed;
    }
  }
  // Every regression folder is named after a target (a typo would silently replay nothing).
  for (const auto& entry : fs::directory_iterator(kFuzzRoot / "regressions")) {
    if (!entry.is_directory()) continue;
    INFO("folder " << entry.path().string());
    CHECK(cct::fuzz::find_target(entry.path().filename().string()) != nullptr);
  }
  CHECK(replayed > 0);
}

TEST_CASE("fuzz seeds: every target has seeds, and each seed is a valid file its reader accepts", "[fuzz]") {
  for (const auto& target : cct::fuzz::targets()) {
    const std::vector<fs::path> seeds = files_in(kFuzzRoot / "corpus" / target.name);
    INFO("target " << target.name);
    CHECK(!seeds.empty());
    for (const fs::path& file : seeds) {
      INFO("seed " << file.string());
      const std::string bytes = read_bytes(file);
      bool accepted = false;
      try {
        target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        accepted = true;
      } catch (const cct::Error& error) {
        FAIL_CHECK("refused: " << error.what());
      }
      CHECK(accepted);
    }
  }
}

TEST_CASE("fuzz targets: bad inputs of each kind are refused with cct::Error", "[fuzz]") {
  // The empty input and a few bytes of junk are refused by every reader (none is a valid file).
  const std::vector<std::string> junk = {std::string(), std::string("\x01\x02\x03", 3), std::string(9, '\xff')};
  for (const auto& target : cct::fuzz::targets()) {
    for (const std::string& bytes : junk) {
      INFO("target " << target.name << ", " << bytes.size() << " junk bytes");
      CHECK_FALSE(cct::fuzz::run_target(target.run, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
  }
}
