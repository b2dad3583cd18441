// A tqdm/timm-style progress bar for training and evaluation loops, and duration formatting.
//
//   epoch 3/30 [#######.....] 120/390 loss 1.234 acc 54.3% 512 img/s 00:12 ETA 00:23
//
// On a terminal the line is redrawn in place with '\r' (at most every 0.1 s) and fits its width; in a
// file or pipe (a log, CI) it prints plain lines instead, one every 10% of the steps and at least
// every 30 s, with no control characters. The rate is an exponential moving average over time, so a
// slow first batch or a stall in data loading fades out within a few seconds.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "terminal.hpp"

namespace cct::train {

// "02:03" below an hour, "1:02:03" from an hour on; "--:--" for an unknown (negative or non-finite)
// duration. Rounds to the nearest second.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long long total = std::llround(seconds);
  const long long hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  char buffer[48];
  if (hours > 0)
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", hours, minutes, secs);
  else
    std::snprintf(buffer, sizeof(buffer), "%02lld:%02lld", minutes, secs);
  return buffer;
}

// Named values shown after the counter, in order: {{"loss", 0.53}, {"acc", 71.2}}.
using ProgressFields = std::vector<std::pair<std::string, double>>;

// "loss 1.234", "acc 54.3%" (a name containing "acc" or "top" is a percentage), "lr 0.0005".
inline std::string format_field(const std::string& name, double value) {
  char buffer[64];
  if (!std::isfinite(value))
    std::snprintf(buffer, sizeof(buffer), "%s", std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
  else if (name.find("acc") != std::string::npos || name.find("top") != std::string::npos)
    std::snprintf(buffer, sizeof(buffer), "%.1f%%", value);
  else if (name.find("loss") != std::string::npos)
    std::snprintf(buffer, sizeof(buffer), "%.3f", value);
  else
    std::snprintf(buffer, sizeof(buffer), "%.4g", value);
  return name + " " + buffer;
}

// "512 img/s", "37.5 img/s", "3.21 img/s"; "? img/s" before the first measurement.
inline std::string format_rate(double items_per_second, const std::string& unit) {
  char buffer[48];
  if (!std::isfinite(items_per_second) || items_per_second < 0)
    std::snprintf(buffer, sizeof(buffer), "?");
  else
    std::snprintf(buffer, sizeof(buffer), items_per_second < 10 ? "%.2f" : items_per_second < 100 ? "%.1f" : "%.0f",
                  items_per_second);
  return std::string(buffer) + " " + unit + "/s";
}

// 1234567 -> "1,234,567" (parameter counts and other large integers in messages).
inline std::string format_thousands(int64_t value) {
  const std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out = value < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

struct ProgressOptions {
  std::string unit = "img";        // what the items are: "img/s", "seq/s", "tok/s"
  double redraw_seconds = 0.1;     // terminal: redraw at most this often
  double log_seconds = 30;         // plain lines: one at least this often, besides every 10%
  double smoothing_seconds = 5;    // time constant of the rate's moving average
  int width = 0;                   // 0: the terminal's width (100 when not a terminal)
  int terminal = -1;               // -1: detect with isatty; 0: plain lines; 1: redraw in place
  std::function<double()> clock;   // monotonic seconds; empty: std::chrono::steady_clock (tests inject)
};

class ProgressBar {
 public:
  ProgressBar(int64_t total_steps, std::string label, std::FILE* out = stdout, ProgressOptions options = {})
      : total_(std::max<int64_t>(0, total_steps)),
        label_(std::move(label)),
        out_(out),
        options_(std::move(options)),
        terminal_(options_.terminal < 0 ? is_terminal(out_) : options_.terminal == 1) {
    if (!options_.clock) {
      options_.clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
    }
    start_time_ = last_sample_time_ = last_line_time_ = options_.clock();
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  // An unfinished bar (an exception, an interrupt) ends its line so the next message starts afresh.
  ~ProgressBar() {
    if (terminal_ && line_open_ && !finished_) {
      std::fputc('\n', out_);
      std::fflush(out_);
    }
  }

  // When resuming mid-epoch: the step the loop starts after, so the first interval's rate counts only
  // the steps this run did. Call before the first update.
  void start_at(int64_t step) { last_step_ = step; }

  // Reports that `step` of the total steps are done and `items_done` items (images, sequences) were
  // processed since the bar was created. Draws when due.
  void update(int64_t step, const ProgressFields& fields, int64_t items_done) {
    const double now = options_.clock();
    fields_ = fields;
    step_ = step;
    sample_rates(now, step, items_done);
    if (terminal_) {
      if (drawn_ && step < total_ && now - last_line_time_ < options_.redraw_seconds) return;
      draw_in_place(render(fields_, format_rate(item_rate_, options_.unit), timing_text(now)));
    } else {
      // The final step is left to finish(), which prints the summary line.
      if (step >= total_) return;
      const int64_t decile = total_ > 0 ? step * 10 / total_ : 10;
      if (decile <= last_decile_ && now - last_line_time_ < options_.log_seconds) return;
      last_decile_ = std::max(last_decile_, decile);
      write_line(render(fields_, format_rate(item_rate_, options_.unit), timing_text(now)));
    }
    last_line_time_ = now;
  }

  // Prints the final line: the summary fields (the last update's when empty), the average rate over the
  // whole run and the total time. Later calls do nothing.
  void finish(const ProgressFields& summary = {}) {
    if (finished_) return;
    finished_ = true;
    const double elapsed = options_.clock() - start_time_;
    const double average_rate = elapsed > 0 ? static_cast<double>(items_done_) / elapsed : -1.0;
    const std::string line = render(summary.empty() ? fields_ : summary, format_rate(average_rate, options_.unit),
                                    format_duration(elapsed) + " total");
    if (terminal_) {
      draw_in_place(line);
      std::fputc('\n', out_);
      std::fflush(out_);
      line_open_ = false;
    } else {
      write_line(line);
    }
  }

  // The moving averages (negative until the first measurement), for callers that log them.
  double items_per_second() const { return item_rate_; }
  double steps_per_second() const { return step_rate_; }
  bool in_place() const { return terminal_; }

 private:
  // Folds the interval since the last sample into the moving averages. Intervals shorter than 50 ms are
  // merged with the next one: a rate from a 1 ms interval is mostly timer noise.
  void sample_rates(double now, int64_t step, int64_t items_done) {
    items_done_ = items_done;
    const double interval = now - last_sample_time_;
    if (interval < 0.05) return;
    const double item_rate = static_cast<double>(items_done - last_items_) / interval;
    const double step_rate = static_cast<double>(step - last_step_) / interval;
    // Time-weighted: a sample counts in proportion to the time it covers, so the average does not
    // depend on how often update() is called.
    if (item_rate_ < 0) {
      item_rate_ = item_rate;
      step_rate_ = step_rate;
    } else {
      const double weight = 1.0 - std::exp(-interval / options_.smoothing_seconds);
      item_rate_ += weight * (item_rate - item_rate_);
      step_rate_ += weight * (step_rate - step_rate_);
    }
    last_sample_time_ = now;
    last_items_ = items_done;
    last_step_ = step;
  }

  std::string timing_text(double now) const {
    const double remaining = step_rate_ > 0 ? static_cast<double>(std::max<int64_t>(0, total_ - step_)) / step_rate_ : -1;
    return format_duration(now - start_time_) + " ETA " + format_duration(remaining);
  }

  int width() const {
    if (options_.width > 0) return options_.width;
    return terminal_ ? terminal_columns(out_) : 100;
  }

  // label [####....] step/total fields rate timing. The bar takes the room left (at most 30 columns).
  // On a terminal the line must fit its width (a wrapped line breaks '\r' redraws), so fields that do
  // not fit are left out from the last one on, then the bar; the counter, rate and timing stay.
  std::string render(const ProgressFields& fields, const std::string& rate, const std::string& timing) {
    const int columns = width() - 1;
    const std::string total_text = std::to_string(total_);
    std::string step_text = std::to_string(step_);
    if (step_text.size() < total_text.size()) step_text.insert(0, total_text.size() - step_text.size(), ' ');
    const std::string counter = " " + step_text + "/" + total_text;
    const std::string timing_part = " " + rate + " " + timing;
    std::string field_text;
    for (const auto& [name, value] : fields) {
      const std::string field = " " + format_field(name, value);
      if (terminal_ && label_.size() + counter.size() + field_text.size() + field.size() + timing_part.size() >
                           static_cast<size_t>(std::max(0, columns)))
        break;
      field_text += field;
    }
    std::string line = label_;
    const int available = columns - static_cast<int>(label_.size() + counter.size() + field_text.size() + timing_part.size()) - 3;
    // The bar keeps its first width (leaving a little room for the numbers after it to grow, and
    // shrinking only when they outgrow that), so it does not jitter from line to line.
    if (bar_width_ < 0) bar_width_ = std::min(available - 6, 30);
    if (available >= 5 && bar_width_ >= 5) {
      const int bar_width = std::min(available, bar_width_);
      const double fraction = total_ > 0 ? std::clamp(static_cast<double>(step_) / static_cast<double>(total_), 0.0, 1.0) : 1.0;
      const int filled = static_cast<int>(fraction * bar_width);
      line += " [" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(bar_width - filled), '.') + "]";
    }
    line += counter + field_text + timing_part;
    if (terminal_ && static_cast<int>(line.size()) > columns) line.resize(static_cast<size_t>(std::max(0, columns)));
    return line;
  }

  void draw_in_place(const std::string& line) {
    std::string text = "\r" + line;
    if (line.size() < drawn_length_) text.append(drawn_length_ - line.size(), ' ');  // clear the longer old line
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
    drawn_length_ = line.size();
    drawn_ = line_open_ = true;
  }

  void write_line(const std::string& line) {
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }

  int64_t total_;
  std::string label_;
  std::FILE* out_;
  ProgressOptions options_;
  bool terminal_;

  ProgressFields fields_;
  int64_t step_ = 0, items_done_ = 0;
  double start_time_ = 0, last_sample_time_ = 0, last_line_time_ = 0;
  int64_t last_step_ = 0, last_items_ = 0, last_decile_ = 0;
  double item_rate_ = -1, step_rate_ = -1;
  int bar_width_ = -1;  // set by the first render
  size_t drawn_length_ = 0;
  bool drawn_ = false, line_open_ = false, finished_ = false;
};

}  // namespace cct::train
