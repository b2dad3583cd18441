// Finding and reading a data set for the image trainer: a CIFAR-10/100 binary folder, an MNIST-style
// IDX folder, or an image folder with train/ and test/ class subfolders (the JPEG copy of CIFAR-10).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <cct/data/cifar.hpp>
#include <cct/data/idx.hpp>
#include <cct/data/image_folder.hpp>
#include <cct/data/transforms.hpp>

namespace image_trainer {
using namespace cct;

enum class DataFormat { kAuto, kCifar10, kCifar100, kIdx, kImageFolder };

inline DataFormat parse_format(const std::string& name) {
  if (name == "auto") return DataFormat::kAuto;
  if (name == "cifar10") return DataFormat::kCifar10;
  if (name == "cifar100") return DataFormat::kCifar100;
  if (name == "idx" || name == "mnist") return DataFormat::kIdx;
  if (name == "folder" || name == "image-folder") return DataFormat::kImageFolder;
  throw Error("unknown --format '" + name + "'; use auto, cifar10, cifar100, idx or folder");
}

inline const char* format_name(DataFormat format) {
  switch (format) {
    case DataFormat::kCifar10: return "CIFAR-10 binary";
    case DataFormat::kCifar100: return "CIFAR-100 binary";
    case DataFormat::kIdx: return "IDX (MNIST / Fashion-MNIST)";
    case DataFormat::kImageFolder: return "image folder";
    default: return "auto";
  }
}

using data::detail::is_folder;
using data::detail::path_exists;

// Looks at what the folder holds; throws naming what was looked for when nothing fits.
inline DataFormat detect_format(const std::string& dir) {
  if (!is_folder(dir)) throw IoError("data folder '" + dir + "' does not exist or is not a folder");
  auto has = [&](const std::string& name) { return path_exists(dir + "/" + name); };
  if (has("data_batch_1.bin") || has("cifar-10-batches-bin/data_batch_1.bin")) return DataFormat::kCifar10;
  if (has("train.bin") || has("cifar-100-binary/train.bin")) return DataFormat::kCifar100;
  if (has("train-images-idx3-ubyte") || has("train-images-idx3-ubyte.gz")) return DataFormat::kIdx;
  if (is_folder(dir + "/train") && is_folder(dir + "/test")) return DataFormat::kImageFolder;
  throw IoError("cannot tell the format of data folder '" + dir +
                "': expected CIFAR-10 batches (data_batch_1.bin ... test_batch.bin), CIFAR-100 (train.bin, "
                "test.bin), IDX files (train-images-idx3-ubyte[.gz], ...), or train/ and test/ folders with one "
                "subfolder of images per class; or pass --format");
}

struct DataSplits {
  data::ImageDataset train, test;
  data::Normalize normalize;
  DataFormat format = DataFormat::kAuto;
};

// Reads the training and test parts. `image_size` > 0 resizes image folders to that size.
inline DataSplits read_data(const std::string& dir, DataFormat format, int64_t image_size) {
  if (format == DataFormat::kAuto) format = detect_format(dir);
  DataSplits splits;
  splits.format = format;
  switch (format) {
    case DataFormat::kCifar10:
      splits.train = data::read_cifar10(dir, true);
      splits.test = data::read_cifar10(dir, false);
      splits.normalize = data::Normalize::cifar10();
      break;
    case DataFormat::kCifar100:
      splits.train = data::read_cifar100(dir, true);
      splits.test = data::read_cifar100(dir, false);
      splits.normalize = data::Normalize::cifar100();
      break;
    case DataFormat::kIdx: {
      // The files of MNIST and Fashion-MNIST look alike; the folder name tells which class names to show.
      const bool fashion = dir.find("fashion") != std::string::npos;
      splits.train = fashion ? data::read_fashion_mnist(dir, true) : data::read_mnist(dir, true);
      splits.test = fashion ? data::read_fashion_mnist(dir, false) : data::read_mnist(dir, false);
      break;
    }
    case DataFormat::kImageFolder: {
      data::ImageFolderOptions options;
      options.height = options.width = image_size;
      splits.train = data::read_image_folder(dir + "/train", options);
      splits.test = data::read_image_folder(dir + "/test", options);
      CCT_CHECK(splits.train.class_names() == splits.test.class_names(), "data folder '", dir,
                "': train/ and test/ have different class folders");
      break;
    }
    default: break;
  }
  if (splits.normalize.mean.empty()) {
    // CIFAR-10's constants for its JPEG copy; statistics of the training images otherwise.
    const auto& names = splits.train.class_names();
    const bool cifar10_classes = names == data::cifar10_class_names() && splits.train.channels() == 3;
    splits.normalize = cifar10_classes ? data::Normalize::cifar10() : data::compute_mean_std(splits.train);
  }
  return splits;
}

}  // namespace image_trainer
