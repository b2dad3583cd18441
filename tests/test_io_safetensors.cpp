// JSON, atomic file writes and safetensors checkpoints (round trips, every corrupt-file case, PyTorch files).
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <cct/io/atomic_file.hpp>
#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>

#include "test_helpers.hpp"

namespace fs = std::filesystem;
namespace json = cct::json;
using cct::Shape;
using cct::Tensor;
using cct::io::DType;
using cct::io::SafeTensorsReader;

namespace {

// A fresh directory per test case, removed afterwards.
struct SafetensorsDir {
  fs::path path;
  SafetensorsDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cct_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~SafetensorsDir() {
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

void write_raw(const std::string& path, const std::string& bytes) { cct::io::write_file_atomic(path, bytes); }

std::string le64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
  return out;
}

// A safetensors file from a header text and data bytes (nothing validated: tests build corrupt ones).
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// Opening `path` must throw cct::IoError whose message contains the path and every part.
void require_open_fails(const std::string& path, const std::vector<std::string>& parts) {
  try {
    SafeTensorsReader reader(path);
    FAIL("expected an IoError for " << path);
  } catch (const cct::IoError& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find(path) != std::string::npos);
    for (const std::string& part : parts) {
      INFO("expected part: " << part);
      CHECK(message.find(part) != std::string::npos);
    }
  }
}

// The byte position and message of a JSON parse error.
void require_parse_error(const std::string& text, size_t position, const std::string& part) {
  INFO("input: " << text);
  try {
    json::parse(text);
    FAIL("parsed without an error");
  } catch (const json::ParseError& error) {
    INFO(error.what());
    CHECK(error.position() == position);
    CHECK(std::string(error.what()).find(part) != std::string::npos);
    CHECK(std::string(error.what()).find("at byte " + std::to_string(position)) != std::string::npos);
  }
}

}  // namespace

// ================================================================================================
// JSON
// ================================================================================================

TEST_CASE("json parses scalars, numbers by kind and strings with escapes", "[json]") {
  REQUIRE(json::parse("null").is_null());
  REQUIRE(json::parse(" true ").as_bool() == true);
  REQUIRE(json::parse("\n\tfalse\r\n").as_bool() == false);
  REQUIRE(json::parse("42").as_int() == 42);
  REQUIRE(json::parse("-7").as_int() == -7);
  REQUIRE(json::parse("0").as_int() == 0);
  REQUIRE(json::parse("9223372036854775807").as_int() == std::numeric_limits<int64_t>::max());
  REQUIRE(json::parse("-9223372036854775808").as_int() == std::numeric_limits<int64_t>::min());
  // Beyond int64, an integer token becomes a double rather than failing or wrapping.
  const json::Value big = json::parse("9223372036854775808");
  REQUIRE(big.is_double());
  REQUIRE(big.as_double() == 9223372036854775808.0);
  REQUIRE(json::parse("3.5").as_double() == 3.5);
  REQUIRE(json::parse("1e3").is_double());
  REQUIRE(json::parse("1e3").as_double() == 1000.0);
  REQUIRE(json::parse("-2.5E-3").as_double() == -0.0025);
  REQUIRE(json::parse("0.1").as_double() == 0.1);
  REQUIRE(json::parse("2").as_double() == 2.0);  // as_double accepts integers
  REQUIRE_THROWS_WITH(json::parse("2.0").as_int(), Catch::Contains("expected an integer"));

  REQUIRE(json::parse(R"("a\n\t\"\\\/\b\f\r")").as_string() == "a\n\t\"\\/\b\f\r");
  REQUIRE(json::parse(R"("\u00e9\u20AC")").as_string() == "\xc3\xa9\xe2\x82\xac");  // é €
  REQUIRE(json::parse(R"("\ud83d\ude00")").as_string() == "\xf0\x9f\x98\x80");       // U+1F600 from a pair
  REQUIRE(json::parse(R"("\u0000x")").as_string() == std::string("\0x", 2));
  REQUIRE(json::parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"").as_string() == "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST_CASE("json objects keep insertion order; values compare and round-trip", "[json]") {
  const std::string text = R"({"zeta":1,"alpha":[true,null,{"k":"v"}],"mid":-2.5,"empty":{},"none":[]})";
  const json::Value value = json::parse(text);
  std::vector<std::string> keys;
  for (const auto& member : value.as_object()) keys.push_back(member.first);
  REQUIRE(keys == std::vector<std::string>{"zeta", "alpha", "mid", "empty", "none"});
  REQUIRE(value.at("alpha").as_array()[2].at("k").as_string() == "v");
  REQUIRE(value.find("missing") == nullptr);
  REQUIRE_THROWS_WITH(value.at("missing"), Catch::Contains("\"missing\""));
  REQUIRE_THROWS_WITH(value.at("zeta").as_string(), Catch::Contains("expected a string, got an integer"));
  REQUIRE(json::dump(value) == text);  // compact output is the same text

  json::Object built{{"name", "cct_7_3x1_32"}, {"layers", 7}, {"ratio", 1.0}, {"small", 1e-300},
                     {"neg", -2.5e10}, {"flags", json::Array{true, false, nullptr}},
                     {"text", "line\nbreak \"quoted\" \x01 tab\t caf\xc3\xa9"}};
  built.set("layers", 8);  // replaces in place, keeps position
  REQUIRE(built.members()[1].first == "layers");
  const json::Value original(built);
  for (int indent : {-1, 0, 2}) {
    const std::string dumped = json::dump(original, indent);
    INFO(dumped);
    const json::Value again = json::parse(dumped);
    REQUIRE(again == original);
    REQUIRE(again.at("ratio").is_double());  // 1.0 stays a double ("1.0", not "1")
    REQUIRE(again.at("layers").is_int());
  }
  REQUIRE(json::dump(json::Value("\x01")) == "\"\\u0001\"");
  REQUIRE(json::dump(json::parse("[1, 2]"), 2) == "[\n  1,\n  2\n]");
  REQUIRE_THROWS_WITH(json::dump(json::Value(std::nan(""))), Catch::Contains("NaN"));
  REQUIRE_THROWS_AS(json::dump(json::Value(std::numeric_limits<double>::infinity())), cct::Error);
}

TEST_CASE("json rejects malformed input with the byte position", "[json]") {
  require_parse_error("", 0, "unexpected end of input");
  require_parse_error("   ", 3, "unexpected end of input");
  require_parse_error("[1,2,]", 5, "expected a value");
  require_parse_error(R"({"a":1,})", 7, "expected a string key");
  require_parse_error(R"({"a" 1})", 5, "expected ':'");
  require_parse_error(R"({a:1})", 1, "expected a string key");
  require_parse_error("[1 2]", 3, "expected ',' or ']'");
  require_parse_error(R"({"a":1 "b":2})", 7, "expected ',' or '}'");
  require_parse_error("[1,", 3, "unexpected end of input");
  require_parse_error("01", 0, "leading zero");
  require_parse_error("-", 1, "expected a digit");
  require_parse_error("+1", 0, "expected a value");
  require_parse_error("1.", 2, "after the decimal point");
  require_parse_error(".5", 0, "expected a value");
  require_parse_error("1e", 2, "exponent");
  require_parse_error("1e999", 0, "out of the range");
  require_parse_error("NaN", 0, "expected a value");
  require_parse_error("tru", 0, "invalid literal");
  require_parse_error("nul1", 0, "invalid literal");
  require_parse_error("\"abc", 4, "unterminated string");
  require_parse_error(R"("a\x")", 2, "invalid escape");
  require_parse_error(R"("\u12G4")", 5, "invalid hex digit");
  require_parse_error(R"("\u12")", 3, "truncated \\u escape");
  require_parse_error(R"("x\ud800")", 2, "unpaired high surrogate");
  require_parse_error(R"("\ud800\u0041")", 1, "unpaired high surrogate");
  require_parse_error(R"("\udc00")", 1, "unpaired low surrogate");
  require_parse_error("\"a\x01\"", 2, "control character");
  require_parse_error("\"a\nb\"", 2, "control character");
  require_parse_error("\"\xc3\"", 2, "continuation byte");
  require_parse_error("\"\xc0\xaf\"", 1, "lead byte");
  require_parse_error("\"\xe0\x80\xaf\"", 1, "overlong");
  require_parse_error("\"\xed\xa0\x80\"", 1, "surrogate");
  require_parse_error("\"\xf4\x90\x80\x80\"", 1, "above U+10FFFF");
  require_parse_error("\"\xff\"", 1, "lead byte");
  require_parse_error(R"({"a":1,"a":2})", 7, "duplicate key \"a\"");
  require_parse_error("[1] x", 4, "trailing content");
  require_parse_error("{} {}", 3, "trailing content");
  require_parse_error("/* c */ 1", 0, "expected a value");
  require_parse_error("[1,]", 3, "expected a value");

  // Depth is bounded: 64 nested arrays parse, 65 do not (and the error points at the 65th '[').
  REQUIRE_NOTHROW(json::parse(std::string(64, '[') + std::string(64, ']')));
  require_parse_error(std::string(65, '[') + std::string(65, ']'), 64, "nesting deeper than the limit of 64");
  json::ParseOptions shallow;
  shallow.max_depth = 2;
  REQUIRE_NOTHROW(json::parse("[[1]]", shallow));
  REQUIRE_THROWS_AS(json::parse("[[[1]]]", shallow), json::ParseError);
  // ParseError is a cct::Error.
  REQUIRE_THROWS_AS(json::parse("{"), cct::Error);
}

// ================================================================================================
// Atomic files
// ================================================================================================

TEST_CASE("atomic write creates and replaces files completely, leaving no temporary file", "[io][atomic]") {
  SafetensorsDir dir;
  const std::string path = dir.file("data.bin");
  std::string content(100000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 + 3);
  cct::io::write_file_atomic(path, content);
  REQUIRE(cct::io::read_file(path) == content);
  cct::io::write_file_atomic(path, "short");  // replacing with a shorter file leaves no old tail
  REQUIRE(cct::io::read_file(path) == "short");
  cct::io::write_file_atomic(path, "");
  REQUIRE(cct::io::read_file(path).empty());
  REQUIRE(dir.listing() == std::vector<std::string>{"data.bin"});

  // Streaming writer: nothing appears under the final name until commit().
  {
    cct::io::AtomicFileWriter writer(dir.file("streamed.bin"));
    REQUIRE(writer.temp_path() == dir.file("streamed.bin") + ".tmp." + std::to_string(::getpid()));
    writer.write("abc");
    writer.write(std::string(3, 'x'));
    REQUIRE_FALSE(fs::exists(dir.file("streamed.bin")));
    REQUIRE(fs::exists(writer.temp_path()));
    writer.commit();
    REQUIRE_THROWS_AS(writer.write("more"), cct::IoError);
  }
  REQUIRE(cct::io::read_file(dir.file("streamed.bin")) == "abcxxx");

  // Abandoned writer (an exception while producing the data): temp removed, old file untouched.
  {
    cct::io::AtomicFileWriter writer(path);
    writer.write("partial");
  }
  REQUIRE(cct::io::read_file(path).empty());
  REQUIRE(dir.listing() == std::vector<std::string>{"data.bin", "streamed.bin"});
}

TEST_CASE("atomic write failures throw IoError naming the path and remove the temporary file", "[io][atomic]") {
  SafetensorsDir dir;
  // Missing directory.
  const std::string missing = dir.file("no_such_dir/model.safetensors");
  REQUIRE_THROWS_AS(cct::io::write_file_atomic(missing, "x"), cct::IoError);
  REQUIRE_THROWS_WITH(cct::io::write_file_atomic(missing, "x"),
                      Catch::Contains(missing) && Catch::Contains("No such file or directory"));
  REQUIRE(dir.listing().empty());

  // The rename fails (the target is a directory): the temp file is removed again.
  fs::create_directory(dir.file("a_directory"));
  REQUIRE_THROWS_WITH(cct::io::write_file_atomic(dir.file("a_directory"), "data"),
                      Catch::Contains(dir.file("a_directory")) && Catch::Contains("renaming"));
  REQUIRE(dir.listing() == std::vector<std::string>{"a_directory"});

  // A write fails halfway (file size limit exceeded): the original file survives unchanged.
  const std::string path = dir.file("checkpoint.bin");
  cct::io::write_file_atomic(path, "original");
  {
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string message;
    try {
      cct::io::write_file_atomic(path, std::string(1 << 16, 'z'));
    } catch (const cct::IoError& error) {
      message = error.what();
    }
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    ::signal(SIGXFSZ, old_handler);
    INFO(message);
    REQUIRE(message.find(path) != std::string::npos);
    REQUIRE(message.find("writing the temporary file") != std::string::npos);
  }
  REQUIRE(cct::io::read_file(path) == "original");
  REQUIRE(dir.listing() == std::vector<std::string>{"a_directory", "checkpoint.bin"});

  // Unwritable directory (permission bits do not stop root, so only checked for other users).
  if (::geteuid() != 0) {
    fs::create_directory(dir.file("read_only"));
    fs::permissions(dir.file("read_only"), fs::perms::owner_read | fs::perms::owner_exec);
    REQUIRE_THROWS_WITH(cct::io::write_file_atomic(dir.file("read_only/x"), "x"),
                        Catch::Contains(dir.file("read_only/x")) && Catch::Contains("Permission denied"));
    fs::permissions(dir.file("read_only"), fs::perms::owner_all);
    REQUIRE(fs::is_empty(dir.file("read_only")));
  }

  REQUIRE_THROWS_WITH(cct::io::read_file(dir.file("absent.txt")),
                      Catch::Contains(dir.file("absent.txt")) && Catch::Contains("No such file"));
  REQUIRE_THROWS_WITH(cct::io::read_file(dir.file("a_directory")), Catch::Contains("not a regular file"));
  REQUIRE_THROWS_WITH(cct::io::read_file(path, 4), Catch::Contains("exceed the limit"));
}

// ================================================================================================
// safetensors: round trips
// ================================================================================================

TEST_CASE("safetensors round-trips F32, F64 and I64 tensors, 0-d and empty ones, and metadata", "[io][safetensors]") {
  SafetensorsDir dir;
  const std::string path = dir.file("model.safetensors");
  cct::Generator gen(7);
  const auto weight = Tensor<float>::randn({3, 5}, gen);
  const auto bias = Tensor<float>::from_vector({0.5f, -1.25f, 3e-8f});
  const auto scalar = Tensor<float>::scalar(-2.75f);
  const auto empty = Tensor<float>::zeros({0, 3});
  const auto precise = Tensor<double>::uniform({2, 2, 3}, -1, 1, gen);
  const auto scalar64 = Tensor<double>::scalar(1.0 / 3.0);
  const auto ids = Tensor<int64_t>::from_vector({-1, 0, int64_t{1} << 40, std::numeric_limits<int64_t>::min()});
  const auto step = Tensor<int64_t>::scalar(123456789012LL);
  const cct::io::Metadata metadata{{"format", "pt"}, {"epoch", "12"}, {"note", "quotes \" and \\ and caf\xc3\xa9"}};

  const std::vector<cct::io::TensorEntry> entries{
      cct::io::make_entry("blocks.0.weight", weight), cct::io::make_entry("blocks.0.bias", bias),
      cct::io::make_entry("scalar", scalar),          cct::io::make_entry("empty", empty),
      cct::io::make_entry("precise", precise),        cct::io::make_entry("scalar64", scalar64),
      cct::io::make_entry("ids", ids),                cct::io::make_entry("step", step)};
  cct::io::save_safetensors(path, entries, metadata);
  REQUIRE(dir.listing() == std::vector<std::string>{"model.safetensors"});

  // The data section starts 8-byte aligned (space-padded header).
  const std::string bytes = cct::io::read_file(path);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  REQUIRE(header_length % 8 == 0);
  REQUIRE(bytes.size() == 8 + header_length + (15 + 3 + 1) * 4 + 13 * 8 + 5 * 8);

  const SafeTensorsReader reader(path);
  REQUIRE(reader.path() == path);
  REQUIRE(reader.metadata() == metadata);
  REQUIRE(reader.names() == std::vector<std::string>{"blocks.0.weight", "blocks.0.bias", "scalar", "empty", "precise",
                                                     "scalar64", "ids", "step"});
  REQUIRE(reader.info("precise").dtype == DType::F64);
  REQUIRE(reader.info("precise").shape == Shape{2, 2, 3});
  REQUIRE(reader.info("scalar").shape == Shape{});
  REQUIRE(reader.info("empty").nbytes() == 0);

  REQUIRE(reader.read<float>("blocks.0.weight").to_vector() == weight.to_vector());
  REQUIRE(reader.read<float>("blocks.0.weight").shape() == Shape{3, 5});
  REQUIRE(reader.read<float>("blocks.0.bias").to_vector() == bias.to_vector());
  REQUIRE(reader.read<float>("scalar").shape() == Shape{});
  REQUIRE(reader.read<float>("scalar").item() == -2.75f);
  REQUIRE(reader.read<float>("empty").shape() == Shape{0, 3});
  REQUIRE(reader.read<float>("empty").numel() == 0);
  REQUIRE(reader.read<double>("precise").to_vector() == precise.to_vector());
  REQUIRE(reader.read<double>("scalar64").item() == 1.0 / 3.0);
  REQUIRE(reader.read<int64_t>("ids").to_vector() == ids.to_vector());
  REQUIRE(reader.read<int64_t>("step").item() == 123456789012LL);

  // Reading into an existing tensor.
  auto destination = Tensor<float>::zeros({3, 5});
  reader.read_into("blocks.0.weight", destination);
  REQUIRE(destination.to_vector() == weight.to_vector());
  REQUIRE_THROWS_WITH(reader.read_into("blocks.0.weight", Tensor<float>::zeros({5, 3})),
                      Catch::Contains("blocks.0.weight") && Catch::Contains("(3, 5)") && Catch::Contains("(5, 3)"));

  // The typed save overload and load_safetensors (all one dtype), in order, with metadata.
  const std::string path2 = dir.file("floats.safetensors");
  cct::io::save_safetensors<float>(path2, {{"a", weight}, {"b", scalar}, {"c", empty}}, {{"k", "v"}});
  cct::io::Metadata loaded_metadata;
  const auto loaded = cct::io::load_safetensors<float>(path2, &loaded_metadata);
  REQUIRE(loaded.size() == 3);
  REQUIRE(loaded[0].first == "a");
  REQUIRE(loaded[0].second.to_vector() == weight.to_vector());
  REQUIRE(loaded[1].first == "b");
  REQUIRE(loaded[1].second.item() == -2.75f);
  REQUIRE(loaded[2].second.shape() == Shape{0, 3});
  REQUIRE(loaded_metadata == cct::io::Metadata{{"k", "v"}});
  // Without metadata there is no "__metadata__" key at all.
  cct::io::save_safetensors<double>(path2, {{"x", scalar64}});
  REQUIRE(cct::io::read_file(path2).find("__metadata__") == std::string::npos);
  REQUIRE(SafeTensorsReader(path2).metadata().empty());
  // No tensors at all is a valid file.
  cct::io::save_safetensors<float>(path2, {});
  REQUIRE(SafeTensorsReader(path2).tensors().empty());
}

TEST_CASE("safetensors dtype conversions happen only when asked", "[io][safetensors]") {
  SafetensorsDir dir;
  const std::string path = dir.file("mixed.safetensors");
  const auto precise = Tensor<double>::from_vector({0.1, -1.0 / 3.0, 1e40});
  const auto single = Tensor<float>::from_vector({0.1f, 2.5f});
  const auto ids = Tensor<int64_t>::from_vector({5, -7, int64_t{1} << 33});
  // IEEE half: 1, -2, 0.5, 65504 (largest), 2^-24 (smallest subnormal), -0, inf; bfloat16: 1, -5.
  const std::vector<uint16_t> half{0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00};
  const std::vector<uint16_t> bf16{0x3f80, 0xc0a0};
  const std::vector<uint8_t> flags{1, 0, 1};
  std::vector<cct::io::TensorEntry> entries{cct::io::make_entry("precise", precise),
                                            cct::io::make_entry("single", single), cct::io::make_entry("ids", ids)};
  entries.push_back({"half", DType::F16, {7}, half.data(), half.size() * 2, nullptr});
  entries.push_back({"bf16", DType::BF16, {2}, bf16.data(), bf16.size() * 2, nullptr});
  entries.push_back({"flags", DType::BOOL, {3}, flags.data(), flags.size(), nullptr});
  cct::io::save_safetensors(path, entries);
  const SafeTensorsReader reader(path);

  REQUIRE_THROWS_WITH(reader.read<float>("precise"), Catch::Contains(path) && Catch::Contains("'precise'") &&
                                                         Catch::Contains("stored as F64") &&
                                                         Catch::Contains("read_converted"));
  REQUIRE_THROWS_WITH(reader.read<double>("single"), Catch::Contains("stored as F32"));
  REQUIRE_THROWS_AS(reader.read<int64_t>("single"), cct::IoError);
  REQUIRE_THROWS_WITH(cct::io::load_safetensors<float>(path), Catch::Contains("'precise'"));

  const auto as_float = reader.read_converted<float>("precise");
  REQUIRE(as_float.to_vector() == std::vector<float>{0.1f, static_cast<float>(-1.0 / 3.0), INFINITY});
  REQUIRE(reader.read_converted<double>("single").to_vector() ==
          std::vector<double>{static_cast<double>(0.1f), 2.5});
  REQUIRE(reader.read_converted<double>("precise").to_vector() == precise.to_vector());
  const auto halves = reader.read_converted<float>("half").to_vector();
  REQUIRE(halves[0] == 1.0f);
  REQUIRE(halves[1] == -2.0f);
  REQUIRE(halves[2] == 0.5f);
  REQUIRE(halves[3] == 65504.0f);
  REQUIRE(halves[4] == std::ldexp(1.0f, -24));
  REQUIRE((halves[5] == 0.0f && std::signbit(halves[5])));
  REQUIRE(std::isinf(halves[6]));
  REQUIRE(reader.read_converted<float>("bf16").to_vector() == std::vector<float>{1.0f, -5.0f});
  REQUIRE(reader.read_converted<int64_t>("flags").to_vector() == std::vector<int64_t>{1, 0, 1});
  REQUIRE(reader.read_converted<int64_t>("ids").to_vector() == ids.to_vector());
  REQUIRE_THROWS_WITH(reader.read_converted<int32_t>("ids"),
                      Catch::Contains("'ids'") && Catch::Contains("element 2") && Catch::Contains("does not fit I32"));
  REQUIRE_THROWS_WITH(reader.read_converted<float>("ids"), Catch::Contains("do not mix"));
  REQUIRE_THROWS_WITH(reader.read_converted<int64_t>("precise"), Catch::Contains("do not mix"));
  REQUIRE_THROWS_WITH(reader.read<float>("nope"), Catch::Contains(path) && Catch::Contains("'nope'") &&
                                                      Catch::Contains("no such tensor"));
}

TEST_CASE("saving rejects empty, reserved and duplicate names and inconsistent entries", "[io][safetensors]") {
  SafetensorsDir dir;
  const std::string path = dir.file("bad.safetensors");
  const auto t = Tensor<float>::ones({2});
  REQUIRE_THROWS_WITH(cct::io::save_safetensors<float>(path, {{"w", t}, {"b", t}, {"w", t}}),
                      Catch::Contains(path) && Catch::Contains("duplicate tensor name 'w'"));
  REQUIRE_THROWS_WITH(cct::io::save_safetensors<float>(path, {{"", t}}),
                      Catch::Contains(path) && Catch::Contains("empty name"));
  REQUIRE_THROWS_WITH(cct::io::save_safetensors<float>(path, {{"__metadata__", t}}), Catch::Contains("reserved"));
  const float value = 1.0f;
  REQUIRE_THROWS_WITH(cct::io::save_safetensors(path, {{"w", DType::F32, {2}, &value, 4, nullptr}}),
                      Catch::Contains("'w'") && Catch::Contains("4 bytes given for F32 (2,)"));
  REQUIRE_THROWS_AS(cct::io::make_entry("undefined", Tensor<float>()), cct::Error);
  REQUIRE(dir.listing().empty());  // nothing was written, not even a temporary file
}

// ================================================================================================
// safetensors: corrupt files, one case each
// ================================================================================================

TEST_CASE("corrupt safetensors files fail with an IoError naming the file and the tensor", "[io][safetensors]") {
  SafetensorsDir dir;
  const std::string path = dir.file("corrupt.safetensors");
  const std::string four_floats(16, '\0');
  const auto with = [&](const std::string& header, const std::string& data) {
    write_raw(path, safetensors_bytes(header, data));
  };

  SECTION("missing file") { require_open_fails(dir.file("absent.safetensors"), {"cannot open", "No such file"}); }
  SECTION("a directory") { require_open_fails(dir.path.string(), {"not a regular file"}); }
  SECTION("shorter than 8 bytes") {
    write_raw(path, std::string("\x10\0\0\0\0", 5));
    require_open_fails(path, {"only 5 bytes", "8-byte header length"});
    write_raw(path, "");
    require_open_fails(path, {"only 0 bytes"});
  }
  SECTION("header length larger than the file") {
    write_raw(path, le64(1000) + R"({"w":{}})");
    require_open_fails(path, {"header length 1000 exceeds the 8 bytes"});
  }
  SECTION("absurd header length") {
    write_raw(path, le64(uint64_t{1} << 62) + "{}");
    require_open_fails(path, {"header length 4611686018427387904 is absurd"});
    write_raw(path, le64(100'000'001) + "{}");
    require_open_fails(path, {"is absurd"});
  }
  SECTION("malformed JSON, with its position") {
    with(R"({"w":{"dtype":"F32",}})", "");
    require_open_fails(path, {"malformed header", "JSON byte 20", "file byte 28", "expected a string key"});
    with("", "");
    require_open_fails(path, {"malformed header", "unexpected end of input"});
    with(R"({"w":1} trailing)", "");
    require_open_fails(path, {"malformed header", "trailing content"});
  }
  SECTION("header that is not an object") {
    with("[1,2]", "");
    require_open_fails(path, {"header is an array, not a JSON object"});
  }
  SECTION("duplicate tensor names") {
    with(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
         std::string(8, '\0'));
    require_open_fails(path, {"duplicate key \"w\""});
  }
  SECTION("tensor entry not an object") {
    with(R"({"w":[1]})", "");
    require_open_fails(path, {"tensor 'w'", "entry is an array, expected an object"});
  }
  SECTION("missing fields") {
    with(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "missing field \"dtype\""});
    with(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "missing field \"shape\""});
    with(R"({"w":{"dtype":"F32","shape":[4]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "missing field \"data_offsets\""});
  }
  SECTION("wrong-typed fields") {
    with(R"({"w":{"dtype":32,"shape":[4],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "field \"dtype\" is an integer, expected a string"});
    with(R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "field \"shape\" is a string, expected an array"});
    with(R"({"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "shape entry is a floating-point number"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":{"b":0}}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "field \"data_offsets\" is an object"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,"16"]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "two non-negative integers"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "unexpected field \"extra\""});
  }
  SECTION("unknown dtype") {
    with(R"({"w":{"dtype":"F8","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0'));
    require_open_fails(path, {"tensor 'w'", "unknown dtype \"F8\""});
    with(R"({"w":{"dtype":"f32","shape":[4],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "unknown dtype \"f32\""});
  }
  SECTION("negative shape") {
    with(R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "shape entry -2 is negative"});
  }
  SECTION("shape whose element count or byte size overflows") {
    with(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "overflows int64"});
    // A zero size makes the tensor empty wherever it appears, however large the other sizes.
    with(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", "");
    REQUIRE(SafeTensorsReader(path).info("w").numel == 0);
    with(R"({"w":{"dtype":"F64","shape":[1152921504606846976,2],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "byte size of F64", "overflows"});
  }
  SECTION("data_offsets count, sign and order") {
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "data_offsets has 1 entries, expected 2"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "two non-negative integers, got [-16,0]"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "end before they begin"});
    with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551616]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "two non-negative integers"});
  }
  SECTION("size mismatch between offsets and shape") {
    with(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"tensor 'w'", "data_offsets [0, 16) hold 16 bytes, but F32 (2, 3) needs 24"});
  }
  SECTION("offsets out of range") {
    with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[4],"data_offsets":[100,116]}})",
         four_floats);
    require_open_fails(path, {"tensor 'w'", "[100, 116) run past the end of the data section (16 bytes)"});
  }
  SECTION("overlapping offsets") {
    with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
         R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
         four_floats);
    require_open_fails(path, {"tensor 'b'", "[4, 12) overlap those of tensor 'a' [0, 8)"});
  }
  SECTION("gaps between tensors, before the first, and after the last") {
    with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
         four_floats);
    require_open_fails(path, {"tensor 'b'", "leave a gap of 4 bytes after tensor 'a' [0, 4)"});
    with(R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})", four_floats);
    require_open_fails(path, {"tensor 'b'", "gap of 4 bytes after the header"});
    with(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", four_floats);
    require_open_fails(path, {"4 unexpected bytes after the last tensor's data ('a' ends at 12)"});
  }
  SECTION("truncated data") {
    cct::io::save_safetensors<float>(path, {{"first", Tensor<float>::ones({4})}, {"last.weight", Tensor<float>::ones({8})}});
    const std::string complete = cct::io::read_file(path);
    write_raw(path, complete.substr(0, complete.size() - 5));
    require_open_fails(path, {"tensor 'last.weight'", "run past the end of the data section", "truncated"});
  }
  SECTION("bad metadata and empty names") {
    with(R"({"__metadata__":["a"]})", "");
    require_open_fails(path, {"\"__metadata__\" is an array, expected an object of strings"});
    with(R"({"__metadata__":{"epoch":3}})", "");
    require_open_fails(path, {"\"__metadata__\" entry 'epoch' is an integer, expected a string"});
    with(R"({"":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", four_floats);
    require_open_fails(path, {"empty name"});
  }
  SECTION("valid variations: padding, whitespace, any key order, empty tensors between others") {
    with(R"( { "b" : {"data_offsets":[8,16],"shape":[2],"dtype":"F32"}, "e":{"dtype":"I64","shape":[0],"data_offsets":[8,8]},)"
         R"( "a":{"shape":[2],"dtype":"F32","data_offsets":[0,8]}}        )",
         four_floats);
    const SafeTensorsReader reader(path);
    REQUIRE(reader.names() == std::vector<std::string>{"b", "e", "a"});
    REQUIRE(reader.read<int64_t>("e").numel() == 0);
    REQUIRE(reader.read<float>("a").to_vector() == std::vector<float>{0, 0});
  }
}

// ================================================================================================
// load_into
// ================================================================================================

TEST_CASE("load_into copies by name; strict mode reports every problem in one error", "[io][safetensors]") {
  SafetensorsDir dir;
  const std::string path = dir.file("checkpoint.safetensors");
  const auto w = Tensor<float>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const auto b = Tensor<float>::from_vector({7, 8});
  const auto extra = Tensor<float>::scalar(9);
  cct::io::save_safetensors<float>(path, {{"fc.weight", w}, {"fc.bias", b}, {"old.buffer", extra}});
  cct::io::save_safetensors(dir.file("f64.safetensors"),
                            {cct::io::make_entry("fc.weight", Tensor<double>::zeros({2, 3}))});

  SECTION("strict, everything matches") {
    auto dw = Tensor<float>::zeros({2, 3});
    dw.requires_grad_();  // parameters load in place, like torch's no_grad copy_
    auto db = Tensor<float>::zeros({2});
    auto dx = Tensor<float>::zeros({});
    const auto report = cct::io::load_into<float>(path, {{"fc.weight", dw}, {"fc.bias", db}, {"old.buffer", dx}});
    REQUIRE(report.complete());
    REQUIRE(report.loaded == std::vector<std::string>{"fc.weight", "fc.bias", "old.buffer"});
    REQUIRE(dw.to_vector() == w.to_vector());
    REQUIRE(db.to_vector() == b.to_vector());
    REQUIRE(dx.item() == 9.0f);
    REQUIRE(report.summary() == "all 3 tensors loaded");
  }
  SECTION("strict: missing, unexpected and wrong shape together, and nothing is copied") {
    auto dw = Tensor<float>::full({3, 2}, -1);
    auto db = Tensor<float>::full({2}, -1);
    auto dn = Tensor<float>::full({4}, -1);
    try {
      cct::io::load_into<float>(path, {{"fc.weight", dw}, {"fc.bias", db}, {"norm.weight", dn}});
      FAIL("strict load_into should have thrown");
    } catch (const cct::IoError& error) {
      const std::string message = error.what();
      INFO(message);
      CHECK(message.find(path) != std::string::npos);
      CHECK(message.find("1 missing from the file: 'norm.weight'") != std::string::npos);
      CHECK(message.find("1 unexpected in the file: 'old.buffer'") != std::string::npos);
      CHECK(message.find("'fc.weight' (file F32 (2, 3), expected F32 (3, 2))") != std::string::npos);
    }
    for (const auto& t : {dw, db, dn})
      for (float v : t.to_vector()) REQUIRE(v == -1.0f);  // even the matching fc.bias was left alone
  }
  SECTION("strict: a dtype mismatch names the tensor") {
    REQUIRE_THROWS_WITH(cct::io::load_into<float>(dir.file("f64.safetensors"), {{"fc.weight", Tensor<float>::zeros({2, 3})}}),
                        Catch::Contains("f64.safetensors") && Catch::Contains("'fc.weight' (file F64 (2, 3), expected F32 (2, 3))"));
  }
  SECTION("lenient: matching tensors load, the rest are listed") {
    auto dw = Tensor<float>::full({3, 2}, -1);
    auto db = Tensor<float>::full({2}, -1);
    auto dn = Tensor<float>::full({4}, -1);
    const auto report = cct::io::load_into<float>(path, {{"fc.weight", dw}, {"fc.bias", db}, {"norm.weight", dn}}, false);
    REQUIRE_FALSE(report.complete());
    REQUIRE(report.loaded == std::vector<std::string>{"fc.bias"});
    REQUIRE(report.missing == std::vector<std::string>{"norm.weight"});
    REQUIRE(report.unexpected == std::vector<std::string>{"old.buffer"});
    REQUIRE(report.mismatched.size() == 1);
    REQUIRE(report.mismatched[0].name == "fc.weight");
    REQUIRE(report.mismatched[0].in_file == "F32 (2, 3)");
    REQUIRE(report.mismatched[0].expected == "F32 (3, 2)");
    REQUIRE(db.to_vector() == b.to_vector());
    for (float v : dw.to_vector()) REQUIRE(v == -1.0f);
    for (float v : dn.to_vector()) REQUIRE(v == -1.0f);
  }
  SECTION("a destination list naming a tensor twice is a caller error") {
    REQUIRE_THROWS_WITH(cct::io::load_into<float>(path, {{"fc.bias", Tensor<float>::zeros({2})},
                                                         {"fc.bias", Tensor<float>::zeros({2})}}),
                        Catch::Contains("'fc.bias' twice"));
  }
  SECTION("a corrupt file fails before anything is copied") {
    write_raw(dir.file("short.safetensors"), "abc");
    REQUIRE_THROWS_WITH(cct::io::load_into<float>(dir.file("short.safetensors"), {}),
                        Catch::Contains("short.safetensors") && Catch::Contains("too short"));
  }
}

// ================================================================================================
// PyTorch interoperability (tests/fixtures/make_safetensors_fixture.py)
// ================================================================================================

namespace {

const std::string kFixture = std::string(CCT_SOURCE_DIR) + "/tests/fixtures/torch_written.safetensors";

// The fixture's tensors, from the same formulas as make_safetensors_fixture.py.
struct FixtureTensors {
  Tensor<float> conv = Tensor<float>::empty({2, 1, 3, 3});
  Tensor<float> positional = Tensor<float>::empty({1, 3, 2});
  Tensor<float> pool_bias = Tensor<float>::scalar(-1.5f);
  Tensor<float> empty = Tensor<float>::zeros({0, 4});
  Tensor<double> scale = Tensor<double>::scalar(1.0 / 3.0);
  Tensor<double> norm = Tensor<double>::empty({2, 3});
  Tensor<int64_t> batches = Tensor<int64_t>::scalar(12345678901LL);
  Tensor<int64_t> token_ids = Tensor<int64_t>::from_vector({-3, 0, 7, int64_t{1} << 40, -(int64_t{1} << 62)});
  std::vector<uint16_t> half_bits{0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001};  // 1, -2, 0.5, 65504, 2^-24

  FixtureTensors() {
    for (int k = 0; k < 18; ++k) conv.data()[k] = static_cast<float>((k - 8) * 0.125);
    for (int k = 0; k < 6; ++k) positional.data()[k] = static_cast<float>(1.0 / (k + 1));
    for (int k = 0; k < 6; ++k) norm.data()[k] = std::sqrt(static_cast<double>(k + 2));
  }
  std::vector<cct::io::TensorEntry> entries() const {
    using cct::io::make_entry;
    std::vector<cct::io::TensorEntry> out{
        make_entry("tokenizer.conv_layers.0.0.weight", conv), make_entry("classifier.positional_emb", positional),
        make_entry("classifier.attention_pool.bias", pool_bias), make_entry("classifier.empty_buffer", empty),
        make_entry("scale", scale), make_entry("classifier.norm.weight", norm),
        make_entry("num_batches_tracked", batches), make_entry("token_ids", token_ids)};
    out.push_back({"half_weights", DType::F16, {5}, half_bits.data(), half_bits.size() * 2, nullptr});
    return out;
  }
};

const cct::io::Metadata kFixtureMetadata{{"format", "pt"}, {"source", "make_safetensors_fixture.py"}};

}  // namespace

TEST_CASE("a safetensors file written by PyTorch reads back with the expected values", "[io][safetensors][torch]") {
  const FixtureTensors expected;
  const SafeTensorsReader reader(kFixture);
  REQUIRE(reader.metadata() == kFixtureMetadata);
  REQUIRE(reader.names() == std::vector<std::string>{"tokenizer.conv_layers.0.0.weight", "classifier.positional_emb",
                                                     "classifier.attention_pool.bias", "classifier.empty_buffer",
                                                     "scale", "classifier.norm.weight", "num_batches_tracked",
                                                     "token_ids", "half_weights"});
  const auto conv = reader.read<float>("tokenizer.conv_layers.0.0.weight");
  REQUIRE(conv.shape() == Shape{2, 1, 3, 3});
  REQUIRE(conv.to_vector() == expected.conv.to_vector());
  REQUIRE(conv(1, 0, 2, 1) == 1.0f);  // flat index 16: (16 - 8) / 8
  const auto positional = reader.read<float>("classifier.positional_emb");
  REQUIRE(positional.shape() == Shape{1, 3, 2});
  REQUIRE(positional.to_vector() == expected.positional.to_vector());
  REQUIRE(reader.read<float>("classifier.attention_pool.bias").shape() == Shape{});
  REQUIRE(reader.read<float>("classifier.attention_pool.bias").item() == -1.5f);
  REQUIRE(reader.read<float>("classifier.empty_buffer").shape() == Shape{0, 4});
  REQUIRE(reader.read<double>("scale").item() == 1.0 / 3.0);
  REQUIRE(reader.read<double>("classifier.norm.weight").to_vector() == expected.norm.to_vector());
  REQUIRE(reader.read<int64_t>("num_batches_tracked").item() == 12345678901LL);
  REQUIRE(reader.read<int64_t>("token_ids").to_vector() == expected.token_ids.to_vector());
  REQUIRE(reader.read_converted<float>("half_weights").to_vector() ==
          std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, std::ldexp(1.0f, -24)});
}

TEST_CASE("cct writes the same bytes as the PyTorch fixture script", "[io][safetensors][torch]") {
  // Same tensors, order and metadata as make_safetensors_fixture.py: the files must be identical, so
  // the script's reader (`--read`) reads cct's files too.
  SafetensorsDir dir;
  const FixtureTensors tensors;
  const std::string path = dir.file("cct_written.safetensors");
  cct::io::save_safetensors(path, tensors.entries(), kFixtureMetadata);
  const std::string ours = cct::io::read_file(path);
  const std::string theirs = cct::io::read_file(kFixture);
  REQUIRE(ours.size() == theirs.size());
  REQUIRE(ours == theirs);
}
