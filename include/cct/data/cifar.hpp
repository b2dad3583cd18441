// Readers for the CIFAR-10 and CIFAR-100 binary batches (the "binary version" of the official tarballs).
//
// CIFAR-10: data_batch_1.bin … data_batch_5.bin (train) and test_batch.bin, records of
// <1 label byte><1024 R><1024 G><1024 B> (row-major 32×32 planes), 3073 bytes each.
// CIFAR-100: train.bin and test.bin, records of <1 coarse label byte><1 fine label byte><3072 pixels>.
// The pixel layout is already (C, H, W), so records are copied straight into the dataset tensor.
// `dir` may be the folder holding the .bin files or its parent (where the tarball was unpacked).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/tensor.hpp"
#include "../io/atomic_file.hpp"
#include "dataset.hpp"

namespace cct::data {

inline const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

inline const std::vector<std::string>& cifar100_class_names() {
  static const std::vector<std::string> names = {
      "apple",       "aquarium_fish", "baby",         "bear",       "beaver",     "bed",         "bee",
      "beetle",      "bicycle",       "bottle",       "bowl",       "boy",        "bridge",      "bus",
      "butterfly",   "camel",         "can",          "castle",     "caterpillar", "cattle",     "chair",
      "chimpanzee",  "clock",         "cloud",        "cockroach",  "couch",      "crab",        "crocodile",
      "cup",         "dinosaur",      "dolphin",      "elephant",   "flatfish",   "forest",      "fox",
      "girl",        "hamster",       "house",        "kangaroo",   "keyboard",   "lamp",        "lawn_mower",
      "leopard",     "lion",          "lizard",       "lobster",    "man",        "maple_tree",  "motorcycle",
      "mountain",    "mouse",         "mushroom",     "oak_tree",   "orange",     "orchid",      "otter",
      "palm_tree",   "pear",          "pickup_truck", "pine_tree",  "plain",      "plate",       "poppy",
      "porcupine",   "possum",        "rabbit",       "raccoon",    "ray",        "road",        "rocket",
      "rose",        "sea",           "seal",         "shark",      "shrew",      "skunk",       "skyscraper",
      "snail",       "snake",         "spider",       "squirrel",   "streetcar",  "sunflower",   "sweet_pepper",
      "table",       "tank",          "telephone",    "television", "tiger",      "tractor",     "train",
      "trout",       "tulip",         "turtle",       "wardrobe",   "whale",      "willow_tree", "wolf",
      "woman",       "worm"};
  return names;
}

inline const std::vector<std::string>& cifar100_coarse_class_names() {
  static const std::vector<std::string> names = {
      "aquatic_mammals",        "fish",
      "flowers",                "food_containers",
      "fruit_and_vegetables",   "household_electrical_devices",
      "household_furniture",    "insects",
      "large_carnivores",       "large_man-made_outdoor_things",
      "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
      "medium_mammals",         "non-insect_invertebrates",
      "people",                 "reptiles",
      "small_mammals",          "trees",
      "vehicles_1",             "vehicles_2"};
  return names;
}

namespace detail {

constexpr int64_t kCifarImageBytes = 3 * 32 * 32;

// Non-empty, whitespace-trimmed lines of a class-name file; empty when the file does not exist. A file
// that exists must name exactly `expected` classes.
inline std::vector<std::string> read_class_names_file(const std::string& path, size_t expected, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return {};
  const std::string text = io::read_file(path);
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    const size_t first = line.find_first_not_of(" \t\r");
    const size_t last = line.find_last_not_of(" \t\r");
    if (first != std::string::npos) names.push_back(line.substr(first, last - first + 1));
    start = end + 1;
  }
  if (names.size() != expected)
    throw IoError(what + ": '" + path + "' names " + std::to_string(names.size()) + " classes, expected " +
                  std::to_string(expected));
  return names;
}

// Appends the records of one CIFAR binary file. Each record is `label_bytes` label bytes followed by
// 3072 pixel bytes; the label used is byte `label_offset`, which must be below num_classes.
inline void append_cifar_file(const std::string& path, int64_t label_bytes, int64_t label_offset, int64_t num_classes,
                              const std::string& what, std::vector<std::string>& chunks, std::vector<int64_t>& labels) {
  std::string bytes = read_data_file(path, what);
  const int64_t record = label_bytes + kCifarImageBytes;
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0) throw IoError(what + ": '" + path + "' is empty");
  if (size % record != 0)
    throw IoError(what + ": '" + path + "' is truncated or not a CIFAR file: its " + std::to_string(size) +
                  " bytes are not a whole number of " + std::to_string(record) + "-byte records");
  const int64_t count = size / record;
  for (int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<int64_t>(static_cast<uint8_t>(bytes[static_cast<size_t>(i * record + label_offset)]));
    if (label >= num_classes)
      throw IoError(what + ": '" + path + "' record " + std::to_string(i) + " has label " + std::to_string(label) +
                    ", outside [0, " + std::to_string(num_classes) + ")");
    labels.push_back(label);
  }
  chunks.push_back(std::move(bytes));
}

// Copies the pixels of every record of every chunk into one (N, 3, 32, 32) tensor.
inline Tensor<uint8_t> gather_cifar_pixels(const std::vector<std::string>& chunks, int64_t label_bytes, int64_t count) {
  Tensor<uint8_t> images = Tensor<uint8_t>::empty({count, 3, 32, 32});
  const int64_t record = label_bytes + kCifarImageBytes;
  int64_t next = 0;
  for (const std::string& chunk : chunks) {
    const int64_t records = static_cast<int64_t>(chunk.size()) / record;
    for (int64_t i = 0; i < records; ++i, ++next)
      std::memcpy(images.data() + next * kCifarImageBytes, chunk.data() + i * record + label_bytes,
                  static_cast<size_t>(kCifarImageBytes));
  }
  return images;
}

}  // namespace detail

// CIFAR-10: the 50,000 training images (data_batch_1..5.bin, in that order) or the 10,000 test images
// (test_batch.bin). Class names come from batches.meta.txt when present, else the standard names.
// Throws cct::IoError naming the file for a missing, empty or truncated batch or an out-of-range label.
inline ImageDataset read_cifar10(const std::string& dir, bool train) {
  const std::string what = "CIFAR-10";
  const std::string root = detail::find_data_dir(dir, train ? "data_batch_1.bin" : "test_batch.bin", "cifar-10-batches-bin");
  std::vector<std::string> files;
  if (train)
    for (int i = 1; i <= 5; ++i) files.push_back(detail::join_path(root, "data_batch_" + std::to_string(i) + ".bin"));
  else
    files.push_back(detail::join_path(root, "test_batch.bin"));
  std::vector<std::string> chunks;
  std::vector<int64_t> labels;
  for (const std::string& file : files) detail::append_cifar_file(file, 1, 0, 10, what, chunks, labels);
  std::vector<std::string> names = detail::read_class_names_file(detail::join_path(root, "batches.meta.txt"), 10, what);
  if (names.empty()) names = cifar10_class_names();
  Tensor<uint8_t> images = detail::gather_cifar_pixels(chunks, 1, static_cast<int64_t>(labels.size()));
  return ImageDataset(images, std::move(labels), std::move(names));
}

// CIFAR-100: train.bin (50,000) or test.bin (10,000), labelled with the 100 fine classes (or the 20
// coarse superclasses when `coarse_labels`). Names from fine_label_names.txt / coarse_label_names.txt
// when present, else the standard names.
inline ImageDataset read_cifar100(const std::string& dir, bool train, bool coarse_labels = false) {
  const std::string what = "CIFAR-100";
  const std::string file_name = train ? "train.bin" : "test.bin";
  const std::string root = detail::find_data_dir(dir, file_name, "cifar-100-binary");
  const int64_t classes = coarse_labels ? 20 : 100;
  std::vector<std::string> chunks;
  std::vector<int64_t> labels;
  detail::append_cifar_file(detail::join_path(root, file_name), 2, coarse_labels ? 0 : 1, classes, what, chunks, labels);
  std::vector<std::string> names = detail::read_class_names_file(
      detail::join_path(root, coarse_labels ? "coarse_label_names.txt" : "fine_label_names.txt"),
      static_cast<size_t>(classes), what);
  if (names.empty()) names = coarse_labels ? cifar100_coarse_class_names() : cifar100_class_names();
  Tensor<uint8_t> images = detail::gather_cifar_pixels(chunks, 2, static_cast<int64_t>(labels.size()));
  return ImageDataset(images, std::move(labels), std::move(names));
}

}  // namespace cct::data
