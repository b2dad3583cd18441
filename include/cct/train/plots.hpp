// Standalone SVG plots for training runs: loss/accuracy curves per epoch and a confusion-matrix heat
// map. Plain SVG 1.1 text (no scripts, no external fonts or files), written atomically, so a browser
// can show the file while training rewrites it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cct/io/atomic_file.hpp>
#include <cct/io/json.hpp>

#include "confusion_matrix.hpp"
#include "metrics_log.hpp"

namespace cct::train {

// One line in a panel; a non-finite y (a missing value) breaks the line, and a point with no finite
// neighbour is drawn as a dot.
struct CurveSeries {
  std::string name;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool dashed = false;
};

struct CurvePanel {
  std::string title;
  std::string y_label;
  std::vector<CurveSeries> series;
  double y_min = std::numeric_limits<double>::quiet_NaN();  // clamps for the axis (accuracy: 0 and 100)
  double y_max = std::numeric_limits<double>::quiet_NaN();
  std::string x_label = "epoch";
  bool x_whole = true;  // whole-number ticks (epochs); false for minutes
};

namespace svg {

inline std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string num(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", value);
  return buffer;
}

inline std::string text(double x, double y, const std::string& content, const std::string& attributes = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attributes.empty() ? "" : " " + attributes) + ">" +
         escape(content) + "</text>\n";
}

inline std::string line(double x1, double y1, double x2, double y2, const std::string& attributes) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " +
         attributes + "/>\n";
}

inline std::string header(double width, double height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(width) + "\" height=\"" +
         num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
         "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

// Rough width of `text` in pixels at `font_size` (sans-serif averages a little over half an em).
inline double text_width(const std::string& text, double font_size) { return 0.6 * font_size * static_cast<double>(text.size()); }

// An axis covering [low, high] with about `count` ticks at 1, 2 or 5 times a power of ten; the range
// widens to whole ticks. integer_steps keeps the step >= 1 (epochs).
struct Axis {
  double low = 0, high = 1, step = 1;
  std::vector<double> ticks;
  int decimals = 0;
};

inline Axis nice_axis(double low, double high, int count, bool integer_steps) {
  if (!(high > low)) {  // one value (or none): centre it in a small range
    const double centre = std::isfinite(low) ? low : 0.0;
    const double half = integer_steps ? 1.0 : std::max(std::abs(centre) * 0.1, 0.5);
    low = centre - half;
    high = centre + half;
  }
  const double raw = (high - low) / std::max(1, count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0})
    if (factor * magnitude >= raw) {
      step = factor * magnitude;
      break;
    }
  if (integer_steps) step = std::max(1.0, std::round(step));
  Axis axis;
  axis.step = step;
  axis.low = std::floor(low / step + 1e-9) * step;
  axis.high = std::ceil(high / step - 1e-9) * step;
  for (double tick = axis.low; tick <= axis.high + step * 1e-6; tick += step) axis.ticks.push_back(tick);
  axis.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return axis;
}

inline std::string tick_label(double value, int decimals) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, std::abs(value) < 1e-12 ? 0.0 : value);
  return buffer;
}

// The panel's plot area, axes, grid, lines and legend, with its top-left corner at (left, top).
inline std::string curve_panel(const CurvePanel& panel, double left, double top, double width, double height) {
  const double margin_left = 58, margin_right = 14, margin_top = 30, margin_bottom = 44;
  const double plot_left = left + margin_left, plot_top = top + margin_top;
  const double plot_width = width - margin_left - margin_right, plot_height = height - margin_top - margin_bottom;

  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const CurveSeries& series : panel.series)
    for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i)
      if (std::isfinite(series.x[i]) && std::isfinite(series.y[i])) {
        x_low = std::min(x_low, series.x[i]);
        x_high = std::max(x_high, series.x[i]);
        y_low = std::min(y_low, series.y[i]);
        y_high = std::max(y_high, series.y[i]);
      }
  const bool has_data = std::isfinite(x_low);
  if (!has_data) x_low = x_high = 1, y_low = 0, y_high = 1;
  if (y_high > y_low) {  // a little air above and below the curves
    const double pad = 0.05 * (y_high - y_low);
    y_low -= pad;
    y_high += pad;
  }
  if (std::isfinite(panel.y_min)) y_low = std::max(y_low, panel.y_min);
  if (std::isfinite(panel.y_max)) y_high = std::min(y_high, panel.y_max);
  if (!panel.x_whole && has_data) x_low = std::min(x_low, 0.0);  // minutes count from the start
  const Axis x_axis = nice_axis(x_low, x_high, 6, panel.x_whole);
  Axis y_axis = nice_axis(y_low, y_high, 5, false);
  auto px = [&](double x) { return plot_left + (x - x_axis.low) / (x_axis.high - x_axis.low) * plot_width; };
  auto py = [&](double y) { return plot_top + plot_height - (y - y_axis.low) / (y_axis.high - y_axis.low) * plot_height; };

  std::string out = "<g>\n";
  out += svg::text(plot_left + plot_width / 2, top + 18, panel.title, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"");
  // Grid and ticks.
  for (double tick : y_axis.ticks) {
    out += svg::line(plot_left, py(tick), plot_left + plot_width, py(tick), "stroke=\"#e5e5e5\"");
    out += svg::line(plot_left - 4, py(tick), plot_left, py(tick), "stroke=\"black\"");
    out += svg::text(plot_left - 7, py(tick) + 4, tick_label(tick, y_axis.decimals), "text-anchor=\"end\"");
  }
  for (double tick : x_axis.ticks) {
    out += svg::line(px(tick), plot_top, px(tick), plot_top + plot_height, "stroke=\"#f0f0f0\"");
    out += svg::line(px(tick), plot_top + plot_height, px(tick), plot_top + plot_height + 4, "stroke=\"black\"");
    out += svg::text(px(tick), plot_top + plot_height + 17, tick_label(tick, panel.x_whole ? 0 : x_axis.decimals),
                     "text-anchor=\"middle\"");
  }
  out += "<rect x=\"" + num(plot_left) + "\" y=\"" + num(plot_top) + "\" width=\"" + num(plot_width) + "\" height=\"" +
         num(plot_height) + "\" fill=\"none\" stroke=\"black\"/>\n";
  out += svg::text(plot_left + plot_width / 2, plot_top + plot_height + 36, panel.x_label, "text-anchor=\"middle\"");
  const double y_label_x = left + 14, y_label_y = plot_top + plot_height / 2;
  out += svg::text(y_label_x, y_label_y, panel.y_label,
                   "text-anchor=\"middle\" transform=\"rotate(-90 " + num(y_label_x) + " " + num(y_label_y) + ")\"");
  if (!has_data) out += svg::text(plot_left + plot_width / 2, plot_top + plot_height / 2, "no data", "text-anchor=\"middle\" fill=\"#888\"");

  // Lines: one polyline per run of finite points; lone points as dots. Few epochs get markers too.
  for (const CurveSeries& series : panel.series) {
    const size_t n = std::min(series.x.size(), series.y.size());
    const bool markers = n <= 40;
    const std::string stroke = "stroke=\"" + series.color + "\" stroke-width=\"2\" fill=\"none\"" +
                               (series.dashed ? " stroke-dasharray=\"6 3\"" : "");
    auto dot = [&](size_t i) {
      return "<circle cx=\"" + num(px(series.x[i])) + "\" cy=\"" + num(py(series.y[i])) + "\" r=\"3\" fill=\"" +
             series.color + "\"/>\n";
    };
    for (size_t i = 0; i < n;) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
        ++i;
        continue;
      }
      size_t end = i;
      while (end < n && std::isfinite(series.x[end]) && std::isfinite(series.y[end])) ++end;
      if (end - i >= 2) {
        out += "<polyline " + stroke + " stroke-linejoin=\"round\" points=\"";
        for (size_t j = i; j < end; ++j) out += (j > i ? " " : "") + num(px(series.x[j])) + "," + num(py(series.y[j]));
        out += "\"/>\n";
      }
      if (markers || end - i == 1)
        for (size_t j = i; j < end; ++j) out += dot(j);
      i = end;
    }
  }

  // Legend in the right-hand corner (top or bottom) that the curves' right third crosses least.
  if (!panel.series.empty()) {
    int upper = 0, lower = 0;
    for (const CurveSeries& series : panel.series)
      for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
        if (!std::isfinite(series.y[i]) || px(series.x[i]) < plot_left + plot_width * 2 / 3) continue;
        const double height_fraction = (plot_top + plot_height - py(series.y[i])) / plot_height;
        upper += height_fraction > 0.6;
        lower += height_fraction < 0.4;
      }
    double legend_width = 0;
    for (const CurveSeries& series : panel.series) legend_width = std::max(legend_width, svg::text_width(series.name, 12));
    legend_width += 40;
    const double row = 18, legend_height = row * static_cast<double>(panel.series.size()) + 8;
    const double legend_left = plot_left + plot_width - legend_width - 8;
    const double legend_top = upper <= lower ? plot_top + 8 : plot_top + plot_height - legend_height - 8;
    out += "<rect x=\"" + num(legend_left) + "\" y=\"" + num(legend_top) + "\" width=\"" + num(legend_width) +
           "\" height=\"" + num(legend_height) + "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n";
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const CurveSeries& series = panel.series[s];
      const double y = legend_top + 4 + row * (static_cast<double>(s) + 0.5);
      out += svg::line(legend_left + 8, y, legend_left + 30, y,
                       "stroke=\"" + series.color + "\" stroke-width=\"2\"" + (series.dashed ? " stroke-dasharray=\"6 3\"" : ""));
      out += svg::text(legend_left + 36, y + 4, series.name);
    }
  }
  out += "</g>\n";
  return out;
}

}  // namespace svg

// Panels side by side (460 x 320 each) under `title`, as SVG text.
inline std::string curves_svg(const std::vector<CurvePanel>& panels, const std::string& title) {
  const double panel_width = 460, panel_height = 320, title_height = 34;
  const double width = 10 + panel_width * static_cast<double>(std::max<size_t>(1, panels.size())) + 10;
  const double height = title_height + panel_height;
  std::string out = svg::header(width, height);
  out += svg::text(width / 2, 24, title, "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\"");
  for (size_t p = 0; p < panels.size(); ++p)
    out += svg::curve_panel(panels[p], 10 + panel_width * static_cast<double>(p), title_height, panel_width, panel_height);
  out += "</svg>\n";
  return out;
}

inline void write_curves_svg(const std::string& path, const std::vector<CurvePanel>& panels, const std::string& title) {
  io::write_file_atomic(path, curves_svg(panels, title));
}

// The usual panels from metrics.jsonl records: loss (train_loss, val_loss) and accuracy in %
// (train_acc, val_acc), against "epoch" (the record's position when absent), and the accuracy again
// against the minutes since the run began ("elapsed_minutes"; the number a time budget is about),
// when the records have them. Series with no values are left out; the accuracy panel's title names the
// best validation epoch.
inline std::vector<CurvePanel> training_curve_panels(const std::vector<json::Object>& records) {
  std::vector<double> epochs = metric_column(records, "epoch");
  for (size_t i = 0; i < epochs.size(); ++i)
    if (!std::isfinite(epochs[i])) epochs[i] = static_cast<double>(i + 1);
  auto series = [&](const char* key, const char* name, const char* color, bool dashed, CurvePanel& panel) {
    std::vector<double> values = metric_column(records, key);
    if (std::none_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); })) return;
    panel.series.push_back(CurveSeries{name, epochs, std::move(values), color, dashed});
  };
  CurvePanel loss{"loss", "cross-entropy loss", {}};
  series("train_loss", "train loss", "#1f77b4", false, loss);
  series("val_loss", "val loss", "#ff7f0e", false, loss);
  CurvePanel accuracy{"accuracy", "top-1 accuracy (%)", {}, 0.0, 100.0};
  series("train_acc", "train acc", "#1f77b4", false, accuracy);
  series("val_acc", "val acc", "#ff7f0e", false, accuracy);
  const std::vector<double> val_acc = metric_column(records, "val_acc");
  size_t best = val_acc.size();
  for (size_t i = 0; i < val_acc.size(); ++i)
    if (std::isfinite(val_acc[i]) && (best == val_acc.size() || val_acc[i] > val_acc[best])) best = i;
  if (best < val_acc.size()) {
    char buffer[96];
    std::snprintf(buffer, sizeof(buffer), "accuracy (best val %.2f%% at epoch %g)", val_acc[best], epochs[best]);
    accuracy.title = buffer;
  }
  std::vector<CurvePanel> panels{loss, accuracy};
  const std::vector<double> minutes = metric_column(records, "elapsed_minutes");
  if (std::any_of(minutes.begin(), minutes.end(), [](double v) { return std::isfinite(v); })) {
    CurvePanel timed{"accuracy against time", "top-1 accuracy (%)", {}, 0.0, 100.0, "minutes since the start", false};
    for (CurveSeries line : accuracy.series) {
      line.x = minutes;
      timed.series.push_back(std::move(line));
    }
    panels.push_back(std::move(timed));
  }
  return panels;
}

inline void write_curves_svg(const std::string& path, const std::vector<json::Object>& records,
                             const std::string& title = "training curves") {
  write_curves_svg(path, training_curve_panels(records), title);
}

// A heat map of `matrix` (rows: true class, columns: predicted), coloured by each row's fraction so
// rare classes read as clearly as common ones, with the counts in the cells when they fit, class
// names on both axes and each row's recall on the right.
inline std::string confusion_matrix_svg(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names,
                                        const std::string& title = "confusion matrix") {
  const int64_t n = matrix.num_classes();
  std::vector<std::string> names(static_cast<size_t>(n));
  for (int64_t c = 0; c < n; ++c)
    names[static_cast<size_t>(c)] =
        static_cast<int64_t>(class_names.size()) == n ? class_names[static_cast<size_t>(c)] : std::to_string(c);
  const double cell = std::clamp(std::round(560.0 / static_cast<double>(n)), 6.0, 44.0);
  const double name_font = std::clamp(cell * 0.75, 5.0, 12.0);
  double longest = 0;
  for (const std::string& name : names) longest = std::max(longest, svg::text_width(name, name_font));
  const double grid_left = 40 + longest + 8, grid_top = 56;
  const double grid_size = cell * static_cast<double>(n);
  const double recall_width = 64;
  const double width = std::max(grid_left + grid_size + recall_width + 16, 360.0);
  const double height = grid_top + grid_size + longest * 0.72 + 48;

  std::string out = svg::header(width, height);
  char heading[160];
  std::snprintf(heading, sizeof(heading), "%s: accuracy %.2f%% (%lld / %lld)", title.c_str(), 100.0 * matrix.accuracy(),
                static_cast<long long>(matrix.correct()), static_cast<long long>(matrix.total()));
  out += svg::text(width / 2, 22, heading, "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"");
  out += svg::text(width / 2, 40, "rows: true class, columns: predicted class; colour: fraction of the row",
                   "text-anchor=\"middle\" font-size=\"11\" fill=\"#555\"");

  const std::vector<double> recall = matrix.per_class_accuracy();
  const double count_font = std::min(12.0, cell * 0.34);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t row_total = matrix.class_total(t);
    const double y = grid_top + cell * static_cast<double>(t);
    for (int64_t p = 0; p < n; ++p) {
      const int64_t count = matrix.count(t, p);
      const double fraction = row_total > 0 ? static_cast<double>(count) / static_cast<double>(row_total) : 0.0;
      // White to dark blue.
      const int r = static_cast<int>(std::lround(247 + (8 - 247) * fraction));
      const int g = static_cast<int>(std::lround(251 + (48 - 251) * fraction));
      const int b = static_cast<int>(std::lround(255 + (107 - 255) * fraction));
      char fill[16];
      std::snprintf(fill, sizeof(fill), "#%02x%02x%02x", r, g, b);
      const double x = grid_left + cell * static_cast<double>(p);
      out += "<rect x=\"" + svg::num(x) + "\" y=\"" + svg::num(y) + "\" width=\"" + svg::num(cell) + "\" height=\"" +
             svg::num(cell) + "\" fill=\"" + fill + "\"" + (cell >= 12 ? " stroke=\"#ddd\" stroke-width=\"0.5\"" : "") + "/>\n";
      if (cell >= 16 && count > 0)
        out += svg::text(x + cell / 2, y + cell / 2 + count_font * 0.35, std::to_string(count),
                         "text-anchor=\"middle\" font-size=\"" + svg::num(count_font) + "\" fill=\"" +
                             (fraction > 0.5 ? "white" : "#222") + "\"");
    }
    out += svg::text(grid_left - 6, y + cell / 2 + name_font * 0.35, names[static_cast<size_t>(t)],
                     "text-anchor=\"end\" font-size=\"" + svg::num(name_font) + "\"");
    char percent[16];
    std::snprintf(percent, sizeof(percent), "%.1f%%", 100.0 * recall[static_cast<size_t>(t)]);
    out += svg::text(grid_left + grid_size + 8, y + cell / 2 + name_font * 0.35,
                     std::isfinite(recall[static_cast<size_t>(t)]) ? percent : "-",
                     "font-size=\"" + svg::num(name_font) + "\"");
  }
  out += svg::text(grid_left + grid_size + 8, grid_top - 6, "recall", "font-size=\"11\" fill=\"#555\"");
  // Column names, rotated so long names do not collide.
  for (int64_t p = 0; p < n; ++p) {
    const double x = grid_left + cell * (static_cast<double>(p) + 0.5) + name_font * 0.35, y = grid_top + grid_size + 8;
    out += svg::text(x, y, names[static_cast<size_t>(p)],
                     "text-anchor=\"end\" font-size=\"" + svg::num(name_font) + "\" transform=\"rotate(-45 " +
                         svg::num(x) + " " + svg::num(y) + ")\"");
  }
  out += "<rect x=\"" + svg::num(grid_left) + "\" y=\"" + svg::num(grid_top) + "\" width=\"" + svg::num(grid_size) +
         "\" height=\"" + svg::num(grid_size) + "\" fill=\"none\" stroke=\"#444\"/>\n";
  const double label_y = grid_top + grid_size / 2;
  out += svg::text(14, label_y, "true class",
                   "text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 " + svg::num(label_y) + ")\"");
  out += svg::text(grid_left + grid_size / 2, height - 10, "predicted class", "text-anchor=\"middle\" font-size=\"12\"");
  out += "</svg>\n";
  return out;
}

inline void write_confusion_matrix_svg(const std::string& path, const ConfusionMatrix& matrix,
                                       const std::vector<std::string>& class_names,
                                       const std::string& title = "confusion matrix") {
  io::write_file_atomic(path, confusion_matrix_svg(matrix, class_names, title));
}

}  // namespace cct::train
