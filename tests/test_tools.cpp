// The training layer (cct/train): progress bar, metrics log, confusion matrix, top-k, SVG plots, the run
// folder, training checkpoints and the shared loop `fit` on a small synthetic task.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <cct/nn/linear.hpp>
#include <cct/train/confusion_matrix.hpp>
#include <cct/train/fit.hpp>
#include <cct/train/metrics_log.hpp>
#include <cct/train/plots.hpp>
#include <cct/train/progress.hpp>
#include "test_helpers.hpp"

using cct::Tensor;
namespace json = cct::json;
namespace train = cct::train;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Everything written to a FILE* so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, got);
  return text;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// A fake clock the test advances by hand.
struct FakeClock {
  double now = 100.0;
  std::function<double()> function() {
    return [this] { return now; };
  }
};

// A fresh directory under /tmp, removed at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/cct_test_tools_XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

void write_raw(const std::string& path, const std::string& text, const char* mode = "wb") {
  std::FILE* file = std::fopen(path.c_str(), mode);
  REQUIRE(file != nullptr);
  std::fwrite(text.data(), 1, text.size(), file);
  std::fclose(file);
}

// Checks that `text` is one well-formed XML element tree: tags nest and close in order, and every
// element and attribute is properly quoted. (Enough for the SVG writer's subset: no comments/CDATA.)
void require_well_formed_xml(const std::string& text) {
  std::vector<std::string> stack;
  size_t pos = 0, roots = 0;
  while ((pos = text.find('<', pos)) != std::string::npos) {
    const size_t end = text.find('>', pos);
    REQUIRE(end != std::string::npos);
    std::string tag = text.substr(pos + 1, end - pos - 1);
    REQUIRE(std::count(tag.begin(), tag.end(), '"') % 2 == 0);
    REQUIRE(tag.find('<') == std::string::npos);
    if (tag[0] == '/') {
      REQUIRE_FALSE(stack.empty());
      REQUIRE(stack.back() == tag.substr(1));
      stack.pop_back();
    } else {
      const std::string name = tag.substr(0, tag.find_first_of(" /"));
      if (stack.empty()) ++roots;
      if (tag.back() != '/') stack.push_back(name);
    }
    pos = end + 1;
  }
  REQUIRE(stack.empty());
  REQUIRE(roots == 1);
  // Text content has its markup characters escaped: no bare '&' that starts no entity.
  for (size_t amp = text.find('&'); amp != std::string::npos; amp = text.find('&', amp + 1)) {
    const std::string entity = text.substr(amp, text.find(';', amp) - amp + 1);
    REQUIRE((entity == "&amp;" || entity == "&lt;" || entity == "&gt;" || entity == "&quot;"));
  }
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("format_duration and field formatting", "[tools][progress]") {
  CHECK(train::format_duration(0) == "00:00");
  CHECK(train::format_duration(59.4) == "00:59");
  CHECK(train::format_duration(59.6) == "01:00");
  CHECK(train::format_duration(123) == "02:03");
  CHECK(train::format_duration(3599) == "59:59");
  CHECK(train::format_duration(3723) == "1:02:03");
  CHECK(train::format_duration(36000) == "10:00:00");
  CHECK(train::format_duration(-1) == "--:--");
  CHECK(train::format_duration(kNaN) == "--:--");
  CHECK(train::format_duration(std::numeric_limits<double>::infinity()) == "--:--");

  CHECK(train::format_field("acc", 54.321) == "acc 54.3%");
  CHECK(train::format_field("top5", 99.96) == "top5 100.0%");
  CHECK(train::format_field("loss", 1.23456) == "loss 1.235");
  CHECK(train::format_field("lr", 0.0005) == "lr 0.0005");
  CHECK(train::format_field("loss", kNaN) == "loss nan");
  CHECK(train::format_rate(512.4, "img") == "512 img/s");
  CHECK(train::format_rate(37.54, "seq") == "37.5 seq/s");
  CHECK(train::format_rate(3.214, "img") == "3.21 img/s");
  CHECK(train::format_rate(-1, "img") == "? img/s");
}

TEST_CASE("progress bar writes plain lines to a file: every 10%, rate, ETA, final summary", "[tools][progress]") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  FakeClock clock;
  train::ProgressOptions options;
  options.clock = clock.function();
  train::ProgressBar bar(20, "epoch 3/30", out, options);
  REQUIRE_FALSE(bar.in_place());
  // 0.5 s and 32 images a step: 64 img/s, 2 steps/s.
  for (int step = 1; step <= 20; ++step) {
    clock.now += 0.5;
    bar.update(step, {{"loss", 2.0 / step}, {"acc", 5.0 * step}}, 32 * step);
  }
  CHECK(bar.items_per_second() == Approx(64.0));
  CHECK(bar.steps_per_second() == Approx(2.0));
  bar.finish({{"loss", 0.25}, {"acc", 75.0}});
  bar.finish();  // a second finish prints nothing
  const std::string text = contents(out);
  std::fclose(out);

  INFO(text);
  CHECK(text.find('\r') == std::string::npos);
  for (char c : text) CHECK((c == '\n' || (c >= 0x20 && c < 0x7f)));
  const std::vector<std::string> lines = split_lines(text);
  REQUIRE(lines.size() == 10);  // 10%, 20%, ..., 90%, then finish
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    CHECK(lines[i].rfind("epoch 3/30 [", 0) == 0);
    CHECK(lines[i].find("loss ") != std::string::npos);
    CHECK(lines[i].find("img/s") != std::string::npos);
    CHECK(lines[i].find("ETA ") != std::string::npos);
    CHECK(lines[i].size() <= 99);
  }
  // Halfway: 10 steps left at 2 steps/s.
  CHECK(lines[4] == "epoch 3/30 [#############.............] 10/20 loss 0.200 acc 50.0% 64.0 img/s 00:05 ETA 00:05");
  CHECK(lines[9] == "epoch 3/30 [##########################] 20/20 loss 0.250 acc 75.0% 64.0 img/s 00:10 total");
}

TEST_CASE("progress bar: the rate is a time-weighted moving average; slow steps log by time; resume", "[tools][progress]") {
  FakeClock clock;
  train::ProgressOptions options;
  options.clock = clock.function();
  options.smoothing_seconds = 5;
  {
    std::FILE* out = std::tmpfile();
    train::ProgressBar bar(1000, "train", out, options);
    int64_t items = 0;
    for (int step = 1; step <= 10; ++step) {
      clock.now += 0.5;
      bar.update(step, {}, items += 32);
    }
    REQUIRE(bar.items_per_second() == Approx(64.0));
    // 5 s at 320 img/s, in steps of 0.1 s: the old rate's weight decays by exp(-5 s / 5 s).
    for (int step = 11; step <= 60; ++step) {
      clock.now += 0.1;
      bar.update(step, {}, items += 32);
    }
    CHECK(bar.items_per_second() == Approx(320.0 - 256.0 * std::exp(-1.0)).epsilon(1e-9));
    // Steps shorter than 50 ms are merged with the next: 4 steps of 10 ms leave the average alone, and
    // the fifth step ends one 100 ms sample of 5 steps (1600 img/s).
    const double before = bar.items_per_second();
    for (int step = 61; step <= 64; ++step) {
      clock.now += 0.01;
      bar.update(step, {}, items += 32);
    }
    CHECK(bar.items_per_second() == before);
    clock.now += 0.06;
    bar.update(65, {}, items += 32);
    CHECK(bar.items_per_second() == Approx(before + (1600.0 - before) * (1.0 - std::exp(-0.1 / 5.0))).epsilon(1e-9));
    std::fclose(out);
  }
  {
    // 1 s a step, 1000 steps: no decile is reached for 100 s, so a line comes every 30 s.
    clock.now = 1000.0;  // whole seconds stay exact
    std::FILE* out = std::tmpfile();
    train::ProgressBar bar(1000, "slow", out, options);
    for (int step = 1; step <= 100; ++step) {
      clock.now += 1.0;
      bar.update(step, {}, step);
    }
    const std::vector<std::string> lines = split_lines(contents(out));
    std::fclose(out);
    REQUIRE(lines.size() == 4);  // 30 s, 60 s, 90 s, then the 10% mark
    CHECK(lines[0].find(" 30/1000 ") != std::string::npos);
    CHECK(lines[3].find(" 100/1000 ") != std::string::npos);
    CHECK(lines[3].find("ETA 15:00") != std::string::npos);
  }
  {
    // Resumed after step 5 of 10: the first interval did one step, not six.
    clock.now = 2000.0;
    std::FILE* out = std::tmpfile();
    train::ProgressBar bar(10, "resumed", out, options);
    bar.start_at(5);
    clock.now += 1.0;
    bar.update(6, {}, 32);
    const std::string text = contents(out);
    std::fclose(out);
    CHECK(bar.steps_per_second() == Approx(1.0));
    CHECK(text.find(" 6/10 32.0 img/s 00:01 ETA 00:04") != std::string::npos);
  }
}

TEST_CASE("progress bar redraws in place on a terminal and fits its width", "[tools][progress]") {
  FakeClock clock;
  train::ProgressOptions options;
  options.clock = clock.function();

  // Forced in-place mode into a file, 60 columns.
  std::FILE* out = std::tmpfile();
  options.terminal = 1;
  options.width = 60;
  {
    train::ProgressBar bar(4, "eval", out, options);
    REQUIRE(bar.in_place());
    for (int step = 1; step <= 4; ++step) {
      clock.now += 1.0;
      bar.update(step, {{"loss", 1.5}, {"acc", 42.0}, {"lr", 0.001}, {"top5", 80.0}}, 100 * step);
    }
    bar.finish();
  }
  const std::string text = contents(out);
  std::fclose(out);
  INFO(text);
  CHECK(count_of(text, "\r") == 5);  // four redraws and the final line
  // Too narrow for every field: the last ones are left out, the timing stays.
  CHECK(text.find("\reval 2/4 loss 1.500 acc 42.0% 100 img/s 00:02 ETA 00:02") != std::string::npos);
  CHECK(text.find("lr ") == std::string::npos);
  CHECK(text.back() == '\n');
  CHECK(count_of(text, "\n") == 1);
  for (const std::string& segment : split_lines(text))
    for (size_t start = 0; start < segment.size();) {
      size_t end = segment.find('\r', start + 1);
      if (end == std::string::npos) end = segment.size();
      CHECK(segment.substr(start, end - start).find_last_not_of(' ') < 60);  // '\r' + at most 59 visible
      start = end;
    }

  // A real pseudo-terminal: detected with isatty, width from TIOCGWINSZ.
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) {
    WARN("no pseudo-terminal available; skipping the isatty part");
    return;
  }
  REQUIRE(::grantpt(master) == 0);
  REQUIRE(::unlockpt(master) == 0);
  const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  REQUIRE(slave >= 0);
  struct winsize size {};
  size.ws_col = 50;
  size.ws_row = 20;
  REQUIRE(::ioctl(slave, TIOCSWINSZ, &size) == 0);
  std::FILE* terminal = ::fdopen(slave, "w");
  REQUIRE(terminal != nullptr);
  REQUIRE(train::is_terminal(terminal));
  CHECK(train::terminal_columns(terminal) == 50);
  train::ProgressOptions detect;
  detect.clock = clock.function();
  {
    train::ProgressBar bar(3, "epoch 1/1", terminal, detect);
    CHECK(bar.in_place());
    for (int step = 1; step <= 3; ++step) {
      clock.now += 1.0;
      bar.update(step, {{"loss", 0.5}, {"acc", 90.0}}, 64 * step);
    }
  }  // destroyed unfinished (as by an exception): the line is ended
  std::fclose(terminal);
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  std::string received;
  char buffer[1024];
  ssize_t got;
  while ((got = ::read(master, buffer, sizeof(buffer))) > 0) received.append(buffer, static_cast<size_t>(got));
  ::close(master);
  INFO(received);
  CHECK(count_of(received, "\r") >= 3);
  CHECK(received.find("3/3") != std::string::npos);
  for (size_t start = 0; start < received.size();) {
    size_t end = received.find_first_of("\r\n", start + 1);
    if (end == std::string::npos) end = received.size();
    const std::string segment = received.substr(start, end - start);
    if (segment.find_first_not_of("\r\n ") != std::string::npos) CHECK(segment.find_last_not_of(' ') < 50);
    start = end;
  }
  CHECK(received.find('\n') != std::string::npos);
}

TEST_CASE("metrics.jsonl: append, read, torn last line, truncate for resume", "[tools][metrics]") {
  TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  std::FILE* warnings = std::tmpfile();

  REQUIRE_THROWS_AS(train::read_metrics(path, warnings), cct::IoError);
  CHECK(train::truncate_after_epoch(path, 3, warnings) == 0);
  CHECK_FALSE(std::filesystem::exists(path));

  {
    train::MetricsLog log(path, warnings);
    for (int epoch = 1; epoch <= 3; ++epoch)
      log.append(json::Object{{"epoch", epoch}, {"train_loss", 2.0 / epoch}, {"val_acc", epoch == 2 ? kNaN : 10.0 * epoch}});
  }
  const std::string written = cct::io::read_file(path);
  CHECK(count_of(written, "\n") == 3);
  CHECK(written.find("\"val_acc\":null") != std::string::npos);  // NaN is not JSON
  std::vector<json::Object> records = train::read_metrics(path, warnings);
  REQUIRE(records.size() == 3);
  CHECK(records[0].at("epoch").as_int() == 1);
  CHECK(records[2].at("train_loss").as_double() == 2.0 / 3);
  CHECK(records[1].at("val_acc").is_null());
  const std::vector<double> val_acc = train::metric_column(records, "val_acc");
  CHECK(val_acc[0] == 10.0);
  CHECK(std::isnan(val_acc[1]));
  CHECK(std::isnan(train::metric_column(records, "missing")[2]));

  // A crash mid-write leaves a torn last line: readers skip it with a warning.
  write_raw(path, "{\"epoch\": 4, \"train_lo", "ab");
  records = train::read_metrics(path, warnings);
  CHECK(records.size() == 3);
  CHECK(contents(warnings).find("line 4 is incomplete") != std::string::npos);
  // The next log cuts it before appending, so the new line does not join it.
  {
    train::MetricsLog log(path, nullptr);
    log.append(json::Object{{"epoch", 4}, {"train_loss", 0.4}});
  }
  records = train::read_metrics(path, warnings);
  REQUIRE(records.size() == 4);
  CHECK(records[3].at("train_loss").as_double() == 0.4);

  // Resuming from the end of epoch 2 drops epochs 3 and 4 and keeps records without an epoch.
  train::MetricsLog(path).append(json::Object{{"note", "no epoch"}});
  CHECK(train::truncate_after_epoch(path, 2, warnings) == 2);
  records = train::read_metrics(path, warnings);
  REQUIRE(records.size() == 3);
  CHECK(records[0].at("epoch").as_int() == 1);
  CHECK(records[1].at("epoch").as_int() == 2);
  CHECK(records[2].at("note").as_string() == "no epoch");
  for (const auto& entry : std::filesystem::directory_iterator(dir.path))
    CHECK(entry.path().filename() == "metrics.jsonl");  // no temporary left behind

  // A bad line before the last is corruption, not a torn write.
  write_raw(path, "{\"epoch\": 1}\n{oops}\n{\"epoch\": 3}\n");
  REQUIRE_THROWS_WITH(train::read_metrics(path, warnings), Catch::Contains("line 2 is not valid JSON"));
  write_raw(path, "{\"epoch\": 1}\n[1, 2]\n{\"epoch\": 3}\n");
  REQUIRE_THROWS_WITH(train::read_metrics(path, warnings), Catch::Contains("line 2 is an array"));
  // Blank lines are skipped.
  write_raw(path, "\n{\"epoch\": 1}\n\n{\"epoch\": 2}\n");
  CHECK(train::read_metrics(path, warnings).size() == 2);
  std::fclose(warnings);
}

TEST_CASE("confusion matrix: counts, accuracy, per-class recall and precision, json, text", "[tools][metrics]") {
  train::ConfusionMatrix matrix(3);
  // (predicted, target)
  for (auto [predicted, target] : std::vector<std::pair<int, int>>{
           {0, 0}, {0, 0}, {1, 0}, {1, 1}, {2, 1}, {0, 1}, {2, 2}, {2, 2}, {0, 2}})
    matrix.add(predicted, target);
  // rows (true): 0 -> [2 1 0], 1 -> [1 1 1], 2 -> [1 0 2]
  CHECK(matrix.count(0, 0) == 2);
  CHECK(matrix.count(0, 1) == 1);
  CHECK(matrix.count(1, 0) == 1);
  CHECK(matrix.count(2, 1) == 0);
  CHECK(matrix.total() == 9);
  CHECK(matrix.correct() == 5);
  CHECK(matrix.accuracy() == Approx(5.0 / 9));
  const std::vector<double> recall = matrix.per_class_accuracy();
  CHECK(recall[0] == Approx(2.0 / 3));
  CHECK(recall[1] == Approx(1.0 / 3));
  CHECK(recall[2] == Approx(2.0 / 3));
  const std::vector<double> precision = matrix.per_class_precision();
  CHECK(precision[0] == Approx(0.5));
  CHECK(precision[1] == Approx(0.5));
  CHECK(precision[2] == Approx(2.0 / 3));
  REQUIRE_THROWS(matrix.add(3, 0));
  REQUIRE_THROWS(matrix.add(0, -1));
  REQUIRE_THROWS(train::ConfusionMatrix(0));

  // add_batch takes each row's argmax.
  train::ConfusionMatrix from_logits(3);
  from_logits.add_batch(Tensor<float>::from_vector({0.9f, 0.1f, 0.0f, 0.2f, 0.1f, 0.7f}, {2, 3}),
                        Tensor<int64_t>::from_vector({0, 1}));
  CHECK(from_logits.count(0, 0) == 1);
  CHECK(from_logits.count(1, 2) == 1);
  REQUIRE_THROWS_AS(from_logits.add_batch(Tensor<float>::zeros({2, 4}), Tensor<int64_t>::zeros({2})), cct::ShapeError);

  const json::Object as_json = matrix.to_json();
  CHECK(json::dump(as_json.at("matrix")) == "[[2,1,0],[1,1,1],[1,0,2]]");
  CHECK(as_json.at("correct").as_int() == 5);
  CHECK(as_json.at("per_class_accuracy").as_array()[1].as_double() == Approx(1.0 / 3));

  const std::string table = matrix.to_string({"airplane", "cat", "truck"});
  INFO(table);
  CHECK(table.find("airplane") != std::string::npos);
  CHECK(table.find("recall") != std::string::npos);
  CHECK(table.find("66.7%") != std::string::npos);
  CHECK(table.find("accuracy 55.6% (5/9)") != std::string::npos);
  const std::vector<std::string> lines = split_lines(table);
  REQUIRE(lines.size() == 6);  // title, header, 3 rows, accuracy
  CHECK(lines[2].size() == lines[1].size());
  CHECK(lines[3].size() == lines[1].size());
  CHECK(lines[4].size() == lines[1].size());
  CHECK(lines[2] == "airplane      2      1      0   66.7%");
  CHECK(lines[1] == "          airpl    cat  truck  recall");
  // Many classes: the per-class list only. A class without samples shows "-" / null.
  train::ConfusionMatrix sparse(4);
  sparse.add(1, 0);
  const std::string list = sparse.to_string({}, 3);
  CHECK(list.find("confusion matrix") == std::string::npos);
  CHECK(list.find("0/1") != std::string::npos);
  CHECK(list.find("3" + std::string(13, ' ') + "-") != std::string::npos);
  CHECK(sparse.to_json().at("per_class_accuracy").as_array()[3].is_null());
}

TEST_CASE("topk_correct counts targets among the k highest scores", "[tools][metrics]") {
  const auto logits = Tensor<float>::from_vector({0.1f, 0.5f, 0.2f, 0.9f,   // target 1: second
                                                  1.0f, 1.0f, 0.0f, 0.0f,   // target 1: tied first
                                                  0.3f, 0.2f, 0.1f, 0.0f},  // target 3: last
                                                 {3, 4});
  const auto targets = Tensor<int64_t>::from_vector({1, 1, 3});
  CHECK(train::topk_correct(logits, targets, 1) == 1);
  CHECK(train::topk_correct(logits, targets, 2) == 2);
  CHECK(train::topk_correct(logits, targets, 3) == 2);
  CHECK(train::topk_correct(logits, targets, 4) == 3);
  const auto with_nan = Tensor<double>::from_vector({std::nan(""), 0.0}, {1, 2});
  CHECK(train::topk_correct(with_nan, Tensor<int64_t>::from_vector({0}), 2) == 0);
  REQUIRE_THROWS(train::topk_correct(logits, targets, 0));
  REQUIRE_THROWS(train::topk_correct(logits, targets, 5));
  REQUIRE_THROWS(train::topk_correct(logits, Tensor<int64_t>::from_vector({1, 1, 4}), 1));
  REQUIRE_THROWS_AS(train::topk_correct(logits, Tensor<int64_t>::from_vector({1, 1}), 1), cct::ShapeError);
}

TEST_CASE("SVG plots: training curves and confusion matrix are well-formed and complete", "[tools][plots]") {
  TempDir dir;
  std::vector<json::Object> records;
  for (int epoch = 1; epoch <= 6; ++epoch) {
    json::Object record{{"epoch", epoch}, {"train_loss", 2.0 / epoch}, {"train_acc", 20.0 + 10 * epoch}};
    // Validation every epoch but the third (a gap in the lines).
    record.set("val_loss", epoch == 3 ? json::Value() : json::Value(2.2 / epoch));
    record.set("val_acc", epoch == 3 ? json::Value() : json::Value(15.0 + 9 * epoch));
    records.push_back(record);
  }
  const std::string path = dir.file("curves.svg");
  train::write_curves_svg(path, records);
  const std::string svg = cct::io::read_file(path);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  require_well_formed_xml(svg);
  for (const char* name : {"train loss", "val loss", "train acc", "val acc", "epoch", "training curves"})
    CHECK(svg.find(name) != std::string::npos);
  CHECK(svg.find("best val 69.00% at epoch 6") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(count_of(svg, "<polyline") == 6);  // train: 1 line a panel; val: 2 pieces a panel around the gap

  // One epoch: dots, no lines; an empty run: "no data".
  train::write_curves_svg(path, std::vector<json::Object>{records[0]});
  const std::string single = cct::io::read_file(path);
  require_well_formed_xml(single);
  CHECK(count_of(single, "<polyline") == 0);
  CHECK(count_of(single, "<circle") == 4);
  CHECK(single.find("nan") == std::string::npos);
  const std::string empty = train::curves_svg(train::training_curve_panels({}), "empty");
  require_well_formed_xml(empty);
  CHECK(count_of(empty, "no data") == 2);

  // With elapsed_minutes (every trainer writes them), a third panel plots the accuracy against time.
  CHECK(svg.find("minutes since the start") == std::string::npos);
  for (size_t i = 0; i < records.size(); ++i) records[i].set("elapsed_minutes", json::Value(0.75 * static_cast<double>(i + 1)));
  train::write_curves_svg(path, records);
  const std::string timed = cct::io::read_file(path);
  require_well_formed_xml(timed);
  CHECK(timed.find("accuracy against time") != std::string::npos);
  CHECK(timed.find("minutes since the start") != std::string::npos);
  CHECK(count_of(timed, "<polyline") == 9);  // the accuracy panel's 3 lines again, against minutes

  train::ConfusionMatrix matrix(3);
  for (auto [predicted, target] : std::vector<std::pair<int, int>>{{0, 0}, {0, 0}, {1, 0}, {1, 1}, {2, 2}, {0, 2}})
    matrix.add(predicted, target);
  const std::string matrix_path = dir.file("confusion_matrix.svg");
  train::write_confusion_matrix_svg(matrix_path, matrix, {"cat & dog", "<bird>", "truck"});
  const std::string heat = cct::io::read_file(matrix_path);
  require_well_formed_xml(heat);
  CHECK(heat.rfind("<svg", 0) == 0);
  CHECK(heat.find("cat &amp; dog") != std::string::npos);
  CHECK(heat.find("&lt;bird&gt;") != std::string::npos);
  CHECK(heat.find("truck") != std::string::npos);
  CHECK(heat.find("accuracy 66.67% (4 / 6)") != std::string::npos);
  CHECK(heat.find(">2</text>") != std::string::npos);
  // 100 classes: no counts in the tiny cells, still well-formed.
  train::ConfusionMatrix large(100);
  for (int c = 0; c < 100; ++c) large.add(c, c);
  const std::string large_svg = train::confusion_matrix_svg(large, {});
  require_well_formed_xml(large_svg);
  CHECK(count_of(large_svg, "<rect") == 100 * 100 + 2);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path))
    CHECK(entry.path().extension() == ".svg");  // no temporary left behind
}

// ---- the run folder, training checkpoints and fit ------------------------------------------------------

TEST_CASE("RunFolder refuses an empty, root or file path and creates nested folders", "[tools][train]") {
  TempDir dir;
  CHECK_THROWS_WITH(train::RunFolder(""), Catch::Contains("output folder is empty"));
  CHECK_THROWS_WITH(train::RunFolder("/"), Catch::Contains("is the file-system root"));
  CHECK_THROWS_WITH(train::RunFolder("/.."), Catch::Contains("is the file-system root"));
  write_raw(dir.file("a_file"), "x");
  CHECK_THROWS_WITH(train::RunFolder(dir.file("a_file")), Catch::Contains("exists and is not a folder"));
  CHECK_THROWS_WITH(train::RunFolder(dir.file("a_file/run")),
                    Catch::Contains("'" + dir.file("a_file") + "' exists and is not a folder"));
  const train::RunFolder run(dir.file("x/y/z/"));
  CHECK(std::filesystem::is_directory(dir.file("x/y/z")));
  CHECK(run.last_checkpoint() == dir.file("x/y/z/") + "/last.safetensors");
  CHECK_THROWS_WITH(train::RunFolder::read_saved_config(dir.file("x")), Catch::Contains("no checkpoint"));
}

TEST_CASE("LoopOptions round-trip through JSON", "[tools][train]") {
  train::LoopOptions options;
  options.epochs = 7;
  options.lr = 3e-4;
  options.seed = 42;
  options.skip_nonfinite = true;
  json::Object saved;
  options.to_json(saved);
  train::LoopOptions back;
  back.from_json(saved);
  CHECK(back.epochs == 7);
  CHECK(back.lr == 3e-4);
  CHECK(back.seed == 42);
  CHECK(back.skip_nonfinite);
}

namespace {

// Three Gaussian blobs in 4-D and a linear classifier: a task fit can learn in a few epochs.
class BlobTask : public train::Task {
 public:
  explicit BlobTask(float scale = 1.0f) : model_(4, 3) {
    cct::Generator gen(5);
    for (int split = 0; split < 3; ++split) {
      const int64_t n = split == 0 ? 48 : 16;
      Tensor<float> x = Tensor<float>::empty({n, 4});
      Tensor<int64_t> y = Tensor<int64_t>::empty({n});
      for (int64_t i = 0; i < n; ++i) {
        y.data()[i] = i % 3;
        for (int64_t j = 0; j < 4; ++j)
          x.data()[i * 4 + j] = scale * ((j == y.data()[i] ? 2.0f : 0.0f) + 0.5f * static_cast<float>(gen.normal()));
      }
      inputs_[split] = x;
      targets_[split] = y;
    }
  }
  std::vector<std::string> saved;  // file names in the order they were written

  cct::nn::Module<float>& model() override { return model_; }
  std::string model_name() const override { return "blob_linear"; }
  const std::vector<std::string>& class_names() const override { return names_; }

  int64_t steps_per_epoch() const override { return 6; }
  void start_epoch(int64_t, int64_t first_step) override { step_ = first_step; }
  bool next_batch() override { return step_ < 6 && (current_ = step_++, true); }
  train::TrainStep forward(double label_smoothing) override {
    train::TrainStep step;
    const Tensor<float> x = slice(inputs_[0], current_ * 8, 8);
    step.labels = slice(targets_[0], current_ * 8, 8);
    step.logits = model_.forward(x);
    step.loss = cct::cross_entropy(step.logits, step.labels, label_smoothing);
    return step;
  }
  int64_t eval_batches(train::Split) override { return 2; }
  Tensor<float> eval_logits(train::Split split, int64_t index, Tensor<int64_t>& labels) override {
    const int which = split == train::Split::kValidation ? 1 : 2;
    labels = slice(targets_[which], index * 8, 8);
    return model_.forward(slice(inputs_[which], index * 8, 8));
  }
  void save_checkpoint(const std::string& path, cct::io::Metadata metadata,
                       const cct::optim::NamedTensors<float>& extra) override {
    auto tensors = model_.state_dict();
    tensors.insert(tensors.end(), extra.begin(), extra.end());
    cct::io::save_safetensors(path, tensors, metadata);
    saved.push_back(std::filesystem::path(path).filename().string());
  }
  void load_weights(const std::string& path) override {
    cct::io::load_into(path, model_.state_dict(), true, {"optimizer.", "training."});
  }

 private:
  template <typename T>
  static Tensor<T> slice(const Tensor<T>& full, int64_t begin, int64_t rows) {
    const int64_t width = full.numel() / full.size(0);
    cct::Shape shape = full.shape();
    shape[0] = rows;
    Tensor<T> out = Tensor<T>::empty(shape);
    std::copy(full.data() + begin * width, full.data() + (begin + rows) * width, out.data());
    return out;
  }

  cct::nn::Linear<float> model_;
  std::vector<std::string> names_{"a", "b", "c"};
  Tensor<float> inputs_[3];
  Tensor<int64_t> targets_[3];
  int64_t step_ = 0, current_ = 0;
};

train::LoopOptions blob_options() {
  train::LoopOptions options;
  options.epochs = 4;
  options.batch_size = 8;
  options.lr = 0.05;
  options.warmup_epochs = 1;
  options.weight_decay = 0;
  return options;
}

}  // namespace

TEST_CASE("fit trains, saves best before last, writes metrics, curves and final.json", "[tools][train]") {
  TempDir dir;
  cct::manual_seed(0);
  BlobTask task;
  const train::RunFolder run(dir.file("run"));
  volatile std::sig_atomic_t interrupted = 0;
  REQUIRE(train::fit(task, blob_options(), run, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 0);
  // Every improving epoch writes best.safetensors before last.safetensors.
  REQUIRE(task.saved.size() >= 5);
  CHECK(task.saved.front() == "best.safetensors");
  for (size_t i = 0; i + 1 < task.saved.size(); ++i)
    if (task.saved[i] == "best.safetensors") CHECK(task.saved[i + 1] == "last.safetensors");
  CHECK(task.saved.back() == "last.safetensors");
  const auto records = train::read_metrics(run.metrics_path());
  REQUIRE(records.size() == 4);
  for (const char* key : {"train_loss", "val_acc", "img_per_s", "data_seconds", "compute_seconds", "validation_seconds"})
    CHECK(records.back().find(key) != nullptr);
  CHECK(records.back().at("train_loss").as_double() < records.front().at("train_loss").as_double());
  const json::Value final_result = json::parse(cct::io::read_file(run.final_path()));
  CHECK(final_result.at("test_acc").as_double() > 60.0);
  CHECK(final_result.at("test_size").as_int() == 16);
  CHECK(std::filesystem::exists(run.curves_path()));
  CHECK(std::filesystem::exists(run.confusion_path()));
}

TEST_CASE("fit: interrupt saves a position that resumes to the uninterrupted result", "[tools][train]") {
  TempDir dir;
  volatile std::sig_atomic_t interrupted = 0;
  cct::manual_seed(0);
  BlobTask reference;
  const train::RunFolder full(dir.file("full"));
  REQUIRE(train::fit(reference, blob_options(), full, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 0);

  // Interrupt before the first step: the checkpoint holds epoch 0, batch 0; resuming finishes the run.
  cct::manual_seed(0);
  BlobTask first;
  const train::RunFolder split(dir.file("split"));
  interrupted = 1;
  REQUIRE(train::fit(first, blob_options(), split, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 130);
  interrupted = 0;
  BlobTask second;
  REQUIRE(train::fit(second, blob_options(), split, json::Object{}, true, &interrupted, std::chrono::steady_clock::now()) == 0);
  const cct::io::SafeTensorsReader a(full.last_checkpoint()), b(split.last_checkpoint());
  CHECK(a.read<float>("weight").to_vector() == b.read<float>("weight").to_vector());
}

TEST_CASE("fit: a NaN loss stops with one message, or is skipped; NaN metrics become null", "[tools][train]") {
  TempDir dir;
  volatile std::sig_atomic_t interrupted = 0;
  cct::manual_seed(0);
  {
    BlobTask task(std::numeric_limits<float>::quiet_NaN());
    const train::RunFolder run(dir.file("stop"));
    CHECK_THROWS_WITH(train::fit(task, blob_options(), run, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()),
                      Catch::Contains("at epoch 1, step 0; training stopped. No checkpoint was saved yet"));
  }
  {
    BlobTask task(std::numeric_limits<float>::quiet_NaN());
    const train::RunFolder run(dir.file("skip"));
    train::LoopOptions options = blob_options();
    options.epochs = 1;
    options.skip_nonfinite = true;
    REQUIRE(train::fit(task, options, run, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 0);
    const std::string final_text = cct::io::read_file(run.final_path());
    CHECK(final_text.find("\"test_loss\": null") != std::string::npos);
  }
}

TEST_CASE("read_training_state refuses numbers with trailing text and negative positions", "[tools][train]") {
  TempDir dir;
  cct::nn::Linear<float> model(2, 2);
  cct::optim::AdamW<float> optimizer(cct::optim::param_groups_no_decay_for_1d(model.named_parameters(), 0.0), {0.1});
  auto write = [&](const std::string& key, const std::string& value) {
    cct::io::Metadata metadata;
    train::write_training_metadata(metadata, train::TrainingPosition{}, "{}");
    metadata[key] = value;
    auto tensors = model.state_dict();
    for (const auto& entry : optimizer.state_dict()) tensors.push_back(entry);
    cct::io::save_safetensors(dir.file("c.safetensors"), tensors, metadata);
    return cct::io::SafeTensorsReader(dir.file("c.safetensors"));
  };
  CHECK_NOTHROW(train::read_training_state(write("training.epoch", "3"), optimizer));
  CHECK_THROWS_WITH(train::read_training_state(write("training.epoch", "12abc"), optimizer),
                    Catch::Contains("metadata 'training.epoch' is not a number: '12abc'"));
  CHECK_THROWS_WITH(train::read_training_state(write("training.batch", "-4"), optimizer),
                    Catch::Contains("is negative"));
}

TEST_CASE("fit with --ema: validates and saves the average, and resumes to the uninterrupted result", "[tools][train]") {
  TempDir dir;
  volatile std::sig_atomic_t interrupted = 0;
  train::LoopOptions options = blob_options();
  options.ema = 0.9;
  cct::manual_seed(0);
  BlobTask reference;
  const train::RunFolder full(dir.file("full"));
  REQUIRE(train::fit(reference, options, full, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 0);
  const cct::io::SafeTensorsReader saved(full.last_checkpoint());
  // The model's names hold the average, which differs from the trained weights kept for --resume.
  REQUIRE(saved.contains("training.raw.weight"));
  CHECK(saved.read<float>("weight").to_vector() != saved.read<float>("training.raw.weight").to_vector());

  cct::manual_seed(0);
  BlobTask first;
  const train::RunFolder split(dir.file("split"));
  interrupted = 1;
  REQUIRE(train::fit(first, options, split, json::Object{}, false, &interrupted, std::chrono::steady_clock::now()) == 130);
  interrupted = 0;
  BlobTask second;
  REQUIRE(train::fit(second, options, split, json::Object{}, true, &interrupted, std::chrono::steady_clock::now()) == 0);
  const cct::io::SafeTensorsReader resumed(split.last_checkpoint());
  CHECK(saved.read<float>("weight").to_vector() == resumed.read<float>("weight").to_vector());
  CHECK(saved.read<float>("training.raw.weight").to_vector() == resumed.read<float>("training.raw.weight").to_vector());
}

namespace {

// A task whose steps slow down after its first two epochs, as a shared machine does: the pace the
// budget was fitted to no longer holds, and the re-fit must move the end of the run.
class SlowingBlobTask : public BlobTask {
 public:
  void start_epoch(int64_t epoch, int64_t first_step) override {
    epoch_ = epoch;
    BlobTask::start_epoch(epoch, first_step);
  }
  train::TrainStep forward(double label_smoothing) override {
    if (epoch_ >= 2) std::this_thread::sleep_for(std::chrono::milliseconds(12));
    return BlobTask::forward(label_smoothing);
  }

 private:
  int64_t epoch_ = 0;
};

}  // namespace

TEST_CASE("a time budget re-draws the linear decay when the pace changes after the warm-up", "[tools][train]") {
  // The rate never jumps: from the re-fit step it falls in a line from the rate reached there.
  train::LoopOptions options = blob_options();
  options.schedule = "linear";
  options.epochs = 10;
  const auto before = train::make_schedule(options, 6);
  options.refit_step = 24;
  options.refit_lr = before(24);
  options.epochs = 6;  // the budget now ends the run at step 36
  const auto after = train::make_schedule(options, 6);
  CHECK(after(3) == before(3));  // the warm-up does not depend on the length of the run
  CHECK(after(24) == Approx(before(24)));
  CHECK(after(30) == Approx(options.min_lr + (before(24) - options.min_lr) * 0.5));
  CHECK(after(36) == Approx(options.min_lr));

  // A real run: fitted to fast first epochs, then slowed down, it ends within its budget with a
  // re-drawn decay that config.json records, so --resume follows the same rates as the run itself.
  TempDir dir;
  volatile std::sig_atomic_t interrupted = 0;
  cct::manual_seed(0);
  SlowingBlobTask task;
  const train::RunFolder run(dir.file("slowing"));
  train::LoopOptions budgeted = blob_options();
  budgeted.schedule = "linear";
  budgeted.time_budget = 0.04;  // 2.4 s
  json::Object settings;
  budgeted.to_json(settings);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(train::fit(task, budgeted, run, settings, false, &interrupted, start) == 0);
  const json::Object config = json::parse(cct::io::read_file(run.config_path())).as_object();
  train::LoopOptions saved;
  saved.from_json(config);
  REQUIRE(saved.refit_step > 0);
  const auto metrics = train::read_metrics(run.metrics_path());
  REQUIRE(metrics.size() == static_cast<size_t>(saved.epochs));
  const auto resumed = train::make_schedule(saved, 6);
  double previous = 1.0;
  for (size_t e = 1; e < metrics.size(); ++e) {  // after the 1-epoch warm-up
    const double lr = metrics[e].at("lr").as_double();
    CHECK(lr <= previous + 1e-12);  // never rises
    previous = lr;
    const int64_t last_step = static_cast<int64_t>(e + 1) * 6 - 1;
    if (last_step >= saved.refit_step) CHECK(resumed(last_step) == Approx(lr).epsilon(1e-9));
  }
  CHECK(metrics.back().at("lr").as_double() < 0.2 * budgeted.lr);
}

TEST_CASE("WeightAverage: warm-up of the decay, swap and restore", "[tools][train]") {
  cct::nn::Linear<float> model(2, 1, /*bias=*/false);
  for (int i = 0; i < 2; ++i) model.weight.data()[i] = 1.0f;
  train::WeightAverage average(model, 0.5);
  for (int i = 0; i < 2; ++i) model.weight.data()[i] = 3.0f;
  average.update(0);  // d = min(0.5, 1/10) = 0.1: 0.1·1 + 0.9·3
  {
    const train::WeightAverage::Swap swapped(&average);
    CHECK(model.weight.data()[0] == Approx(2.8f));
  }
  CHECK(model.weight.data()[0] == 3.0f);
  CHECK_THROWS_WITH(train::WeightAverage(model, 1.0), Catch::Contains("EMA decay must be in (0, 1)"));
}

TEST_CASE("fit with a time budget fits whole epochs, records them in config.json, and the schedule is linear", "[tools][train]") {
  TempDir dir;
  volatile std::sig_atomic_t interrupted = 0;
  cct::manual_seed(0);
  BlobTask task;
  const train::RunFolder run(dir.file("budget"));
  train::LoopOptions options = blob_options();
  options.epochs = 1000;
  options.time_budget = 0.02;  // 1.2 s: a handful of epochs of this tiny task, never 1000
  options.schedule = "linear";
  json::Object settings;
  options.to_json(settings);
  REQUIRE(train::fit(task, options, run, settings, false, &interrupted, std::chrono::steady_clock::now()) == 0);
  const json::Value config = json::parse(cct::io::read_file(run.config_path()));
  const int64_t epochs = config.at("epochs").as_int();
  CHECK(epochs >= 1);
  CHECK(epochs < 1000);
  CHECK(config.at("fitted_total_steps").as_int() == epochs * 6);
  CHECK(config.at("time_budget").as_double() == 0.02);
  CHECK(train::read_metrics(run.metrics_path()).size() == static_cast<size_t>(epochs));

  // Interrupted and resumed with the saved settings (as --resume reads config.json): the fitted epochs
  // are kept, not fitted again, and the result is the uninterrupted one.
  cct::manual_seed(0);
  BlobTask first;
  const train::RunFolder split(dir.file("split"));
  interrupted = 1;
  REQUIRE(train::fit(first, options, split, settings, false, &interrupted, std::chrono::steady_clock::now()) == 130);
  interrupted = 0;
  const json::Object saved = json::parse(cct::io::read_file(split.config_path())).as_object();
  train::LoopOptions resumed_options;
  resumed_options.from_json(saved);
  BlobTask second;
  REQUIRE(train::fit(second, resumed_options, split, saved, true, &interrupted, std::chrono::steady_clock::now()) == 0);
  const int64_t split_epochs = saved.at("epochs").as_int();
  CHECK(train::read_metrics(split.metrics_path()).size() == static_cast<size_t>(split_epochs));
  if (split_epochs == epochs) {
    const cct::io::SafeTensorsReader a(run.last_checkpoint()), b(split.last_checkpoint());
    CHECK(a.read<float>("weight").to_vector() == b.read<float>("weight").to_vector());
  }

  train::LoopOptions fitted = options;
  fitted.epochs = 5;
  const auto lr_at = train::make_schedule(fitted, 6);
  CHECK(lr_at(6) == Approx(0.05));                 // end of the 1-epoch warm-up
  CHECK(lr_at(18) == Approx(0.05 - (0.05 - 1e-5) * 0.5));  // half-way down the line
  CHECK(lr_at(30) == Approx(1e-5));
}
