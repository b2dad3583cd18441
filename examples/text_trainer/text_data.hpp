// The text data sets cct_text knows, where their files lie under the data folder, and how each is cut
// into training, validation and test parts.
//
//   trec             trec/train_5500.label (train) and trec/TREC_10.label (test); validation: --val-split
//                    of the training file
//   ag_news          ag_news_subset/train.csv (train, 5,000 rows) and the official ag_news/test.csv
//                    (7,600 rows, test). The subset's dev.csv repeats 1,000 of train.csv's rows, so it
//                    cannot validate a model trained on all of them: with --val-split 0 (the default)
//                    all 5,000 rows train and nothing validates (the epoch with the best training
//                    accuracy is tested, as for TREC and CIFAR-10: with the default linear decay and
//                    EMA, the last); with any --val-split above 0, dev.csv validates and its
//                    rows leave training (4,000 remain)
//   ag_news_subset   ag_news_subset/{train,dev,test}.csv, training and validation as for ag_news
//   sst2, sst1       sentence_clf/stsa.binary.* / stsa.fine.* (train, dev, test)
//   mr, subj, cr,    sentence_clf/rt-polarity.all, subj.all, custrev.all, mpqa.all: one file; a fixed
//   mpqa             10% of it (stratified, the same for every run so runs compare) is the test set,
//                    and --val-split of the rest validates
// The two AG News layouts label differently (official: class 1–4 in the first field; subset: label
// 0–3 last); both readers map them to World, Sports, Business, Sci/Tech in that order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <cct/config.hpp>
#include <cct/core/generator.hpp>
#include <cct/data/dataset.hpp>
#include <cct/text/datasets.hpp>

namespace text_trainer {
using namespace cct;

inline const std::vector<std::string>& known_datasets() {
  static const std::vector<std::string> names = {"trec", "ag_news", "ag_news_subset", "mr",  "sst2",
                                                 "sst1", "subj",    "cr",             "mpqa"};
  return names;
}

using data::detail::is_folder;

// --data-dir when given; otherwise $CCT_DATA_DIR/text when that folder exists, else $CCT_DATA_DIR.
inline std::string resolve_text_data_dir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("CCT_DATA_DIR")) {
    const std::string base = env;
    return is_folder(base + "/text") ? base + "/text" : base;
  }
  throw Error("no data: pass --data-dir DIR or set CCT_DATA_DIR (a folder holding trec/, ag_news/, "
              "ag_news_subset/ and sentence_clf/, or one with text/ holding them)");
}

struct TextSplits {
  text::TextDataset train, val, test;
  std::string train_source, val_source, test_source;  // for the log
};

// Splits `dataset` into (kept, held out) with `fraction` of every class held out (at least one example
// of a class with two or more), chosen by `seed`. Both parts keep the file's order.
inline std::pair<text::TextDataset, text::TextDataset> split_stratified(const text::TextDataset& dataset,
                                                                        double fraction, uint64_t seed) {
  CCT_CHECK(fraction >= 0 && fraction < 1, "split_stratified: fraction must be in [0, 1), got ", fraction);
  std::vector<uint8_t> held(static_cast<size_t>(dataset.size()), 0);
  if (fraction > 0) {
    std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(dataset.num_classes()));
    for (int64_t i = 0; i < dataset.size(); ++i) by_class[static_cast<size_t>(dataset.labels[static_cast<size_t>(i)])].push_back(i);
    for (size_t c = 0; c < by_class.size(); ++c) {
      const auto& pool = by_class[c];
      const int64_t n = static_cast<int64_t>(pool.size());
      int64_t take = static_cast<int64_t>(static_cast<double>(n) * fraction + 0.5);
      if (take == 0 && n >= 2) take = 1;
      Generator gen(data::derive_seed(seed, c, 0, /*purpose=*/7));
      const std::vector<int64_t> order = data::random_permutation(n, gen);
      for (int64_t i = 0; i < take; ++i) held[static_cast<size_t>(pool[static_cast<size_t>(order[static_cast<size_t>(i)])])] = 1;
    }
  }
  std::vector<int64_t> kept_rows, held_rows;
  for (int64_t i = 0; i < dataset.size(); ++i) (held[static_cast<size_t>(i)] ? held_rows : kept_rows).push_back(i);
  return {dataset.subset(kept_rows), dataset.subset(held_rows)};
}

namespace reading {

inline text::TextDataset with_class_names(text::TextDataset dataset, const std::vector<std::string>& names) {
  CCT_CHECK(dataset.num_classes() <= static_cast<int64_t>(names.size()), "the file has labels up to ",
            dataset.num_classes() - 1, " but the data set has ", names.size(), " classes");
  dataset.class_names = names;
  return dataset;
}

inline text::TextDataset read_sentences(const std::string& path, const std::vector<std::string>& names) {
  text::LabelSentenceOptions options;
  options.class_names = names;
  return text::read_label_sentence_file(path, options);
}

}  // namespace reading

// Reads `name` from `dir` and cuts it (see the file comment). `val_split` and `seed` choose the
// validation part where the data set has no dev file.
inline TextSplits read_text_data(const std::string& name, const std::string& dir, double val_split, uint64_t seed) {
  const auto& known = known_datasets();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    std::string list;
    for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
    throw Error("unknown --dataset '" + name + "'; known: " + list);
  }
  if (!is_folder(dir)) throw IoError("data folder '" + dir + "' does not exist or is not a folder");
  const auto file = [&](const std::string& relative) { return dir + "/" + relative; };
  // A fixed seed for the test part of single-file sets: every run is scored on the same sentences.
  constexpr uint64_t kTestSplitSeed = 0x7E57;
  TextSplits s;
  bool has_dev = false;
  const std::vector<std::string> ag_names = text::ag_news_classes();
  const std::vector<std::string> polarity = {"negative", "positive"};
  if (name == "trec") {
    s.train = text::read_trec(s.train_source = file("trec/train_5500.label"));
    s.test = text::read_trec(s.test_source = file("trec/TREC_10.label"));
  } else if (name == "ag_news" || name == "ag_news_subset") {
    s.train = reading::with_class_names(text::read_ag_news_subset(s.train_source = file("ag_news_subset/train.csv")), ag_names);
    if (val_split > 0) {
      s.val = reading::with_class_names(text::read_ag_news_subset(s.val_source = file("ag_news_subset/dev.csv")), ag_names);
      // The subset's dev.csv rows all appear in its train.csv as well: they are left out of training, so
      // that validation (and the choice of best.safetensors) sees sentences the model was not trained on.
      const std::unordered_set<std::string> dev_texts(s.val.texts.begin(), s.val.texts.end());
      std::vector<int64_t> kept;
      for (int64_t i = 0; i < s.train.size(); ++i)
        if (!dev_texts.count(s.train.texts[static_cast<size_t>(i)])) kept.push_back(i);
      if (static_cast<int64_t>(kept.size()) < s.train.size()) {
        s.train_source += " without the " + std::to_string(s.train.size() - static_cast<int64_t>(kept.size())) +
                          " rows that dev.csv repeats";
        s.train = s.train.subset(kept);
      }
    }
    if (name == "ag_news") s.test = text::read_ag_news(s.test_source = file("ag_news/test.csv"));
    else s.test = reading::with_class_names(text::read_ag_news_subset(s.test_source = file("ag_news_subset/test.csv")), ag_names);
    has_dev = true;
  } else if (name == "sst2" || name == "sst1") {
    const std::string stem = name == "sst2" ? "sentence_clf/stsa.binary." : "sentence_clf/stsa.fine.";
    const std::vector<std::string> names =
        name == "sst2" ? polarity
                       : std::vector<std::string>{"very negative", "negative", "neutral", "positive", "very positive"};
    s.train = reading::read_sentences(s.train_source = file(stem + "train"), names);
    s.val = reading::read_sentences(s.val_source = file(stem + "dev"), names);
    s.test = reading::read_sentences(s.test_source = file(stem + "test"), names);
    has_dev = true;
  } else {
    const std::string path = name == "mr"     ? "sentence_clf/rt-polarity.all"
                             : name == "subj" ? "sentence_clf/subj.all"
                             : name == "cr"   ? "sentence_clf/custrev.all"
                                              : "sentence_clf/mpqa.all";
    const std::vector<std::string> names = name == "subj" ? std::vector<std::string>{"subjective", "objective"} : polarity;
    const text::TextDataset all = reading::read_sentences(file(path), names);
    std::tie(s.train, s.test) = split_stratified(all, 0.1, kTestSplitSeed);
    s.train_source = file(path) + " (90%)";
    s.test_source = file(path) + " (a fixed 10%)";
  }
  if (!has_dev && val_split > 0) {
    std::tie(s.train, s.val) = split_stratified(s.train, val_split, seed);
    s.val_source = "--val-split " + std::to_string(val_split).substr(0, 4) + " of the training part";
  }
  CCT_CHECK(s.train.class_names == s.test.class_names, "data set '", name, "': training and test classes differ");
  return s;
}

}  // namespace text_trainer
