// Where `eval` and `predict` get a model from, and how they prepare images for it: one function for
// both commands, so a given file is always preprocessed the same way.
//
//   a cct checkpoint (metadata with cct's format marker): the model rebuilds itself from the stored
//     config; the normalisation and class names the training run saved are used;
//   a weights-only safetensors file (e.g. converted from a PyTorch .pth by scripts/convert_checkpoint.py,
//     with the reference tensor names): --model NAME builds the registered model, the class count
//     comes from the file's classifier.fc.weight, and the preprocessing is the reference's evaluation:
//     32×32 models take the image resized to 32×32 and normalised with CIFAR-10's mean and std; the
//     224/384 models resize to size/0.875 and take the central size×size crop (timm's evaluation
//     transform), normalised with ImageNet's mean and std.
// --mean / --std override the normalisation and --classes the class names (cifar10, cifar100, or a
// file with one name per line).
#pragma once

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <cct/data/cifar.hpp>
#include <cct/data/image_io.hpp>
#include <cct/data/transforms.hpp>
#include <cct/models/checkpoint.hpp>
#include <cct/io/input_file.hpp>
#include <cct/models/registry.hpp>

#include "../common/outputs.hpp"
#include "data_info.hpp"

namespace image_trainer {
using namespace cct;

// What the user said about the model file (the options eval and predict share).
struct ModelSource {
  std::string checkpoint;
  std::string model;    // a registered name, for weights-only files
  std::string classes;  // cifar10, cifar100, imagenet or a file of names
  std::vector<float> mean, std;
};

struct Preprocessing {
  int64_t size = 32;        // the model's input: size × size
  int64_t resize_to = 32;   // images are resized to resize_to × resize_to, then centre-cropped to size
  data::Normalize normalize;
  std::string description;
};

struct LoadedImageModel {
  std::shared_ptr<models::CompactTransformer<float>> model;
  std::vector<std::string> class_names;
  Preprocessing preprocessing;
};

inline std::string describe_normalisation(const data::Normalize& n) {
  std::string out = "mean (";
  for (size_t c = 0; c < n.mean.size(); ++c) out += (c ? ", " : "") + std::to_string(n.mean[c]).substr(0, 6);
  out += "), std (";
  for (size_t c = 0; c < n.stddev.size(); ++c) out += (c ? ", " : "") + std::to_string(n.stddev[c]).substr(0, 6);
  return out + ")";
}

// The reference's evaluation preprocessing for a model of this input size and channel count.
inline Preprocessing reference_preprocessing(const models::ModelConfig& config) {
  Preprocessing p;
  p.size = config.image_size;
  const bool imagenet_size = config.image_size >= 224;
  p.resize_to = imagenet_size ? static_cast<int64_t>(std::floor(static_cast<double>(config.image_size) / 0.875))
                              : config.image_size;
  if (config.in_channels != 3) {
    p.normalize = data::Normalize(std::vector<float>(static_cast<size_t>(config.in_channels), 0.5f),
                                  std::vector<float>(static_cast<size_t>(config.in_channels), 0.5f));
    p.description = "pixels/255 normalised with mean 0.5, std 0.5";
    return p;
  }
  p.normalize = imagenet_size ? data::Normalize({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}) : data::Normalize::cifar10();
  p.description = imagenet_size ? "the reference's ImageNet evaluation: resize to " + std::to_string(p.resize_to) +
                                      ", centre crop " + std::to_string(p.size) + ", ImageNet mean and std"
                                : "the reference's CIFAR evaluation: " + std::to_string(p.size) + "x" +
                                      std::to_string(p.size) + ", CIFAR-10 mean and std";
  return p;
}

inline std::vector<std::string> named_classes(const std::string& classes, int64_t num_classes) {
  std::vector<std::string> names;
  if (classes == "cifar10") names = data::cifar10_class_names();
  else if (classes == "cifar100") names = data::cifar100_class_names();
  else if (classes == "imagenet")
    throw Error("--classes imagenet: cct ships no ImageNet class list; pass --classes FILE with the 1000 names, one per "
                "line, in the order of the model's outputs");
  else {
    io::InputFile in = [&] {
      try {
        return io::InputFile(classes, "class-name file");
      } catch (const IoError& error) {
        throw IoError(std::string("--classes: ") + error.what() +
                      " (give cifar10, cifar100 or a file of class names, one per line)");
      }
    }();
    for (std::string line; in.read_line(line);)
      if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int64_t>(names.size()) != num_classes)
    throw Error("--classes " + classes + " names " + std::to_string(names.size()) + " classes but the model has " +
                std::to_string(num_classes));
  return names;
}

// The model of `source`, its class names and the preprocessing its images get.
inline LoadedImageModel load_image_model(const ModelSource& source) {
  LoadedImageModel loaded;
  const io::SafeTensorsReader reader(source.checkpoint);
  const bool cct_file = models::is_cct_checkpoint(reader.metadata());
  DataInfo info;
  if (cct_file) {
    loaded.model = models::load_model(source.checkpoint);
    if (!source.model.empty() && source.model != loaded.model->config().name)
      throw Error("checkpoint '" + source.checkpoint + "' holds " + loaded.model->config().name + ", not --model " +
                  source.model + "; drop --model (a cct checkpoint knows its model)");
    info = read_data_info(reader);
  } else {
    if (source.model.empty())
      throw IoError("checkpoint '" + source.checkpoint + "' holds weights only (no cct metadata, e.g. converted from "
                    "PyTorch): pass --model NAME with the registered model it holds (`model_summary --list`)");
    const std::string head = "classifier.fc.weight";
    if (!reader.contains(head))
      throw IoError("checkpoint '" + source.checkpoint + "' has no '" + head + "', so it does not hold a " + source.model +
                    " with the reference tensor names");
    models::ModelOptions options;
    options.num_classes = reader.info(head).shape.at(0);
    loaded.model = models::create(source.model, options);
    models::load_weights(source.checkpoint, *loaded.model, /*strict=*/true);
  }
  loaded.model->eval();
  const models::ModelConfig& config = loaded.model->config();
  loaded.preprocessing = reference_preprocessing(config);
  if (!info.mean.empty()) {
    loaded.preprocessing.normalize = data::Normalize(info.mean, info.std);
    loaded.preprocessing.description = std::to_string(config.image_size) + "x" + std::to_string(config.image_size) +
                                       ", the training run's normalisation";
  }
  if (!source.mean.empty() || !source.std.empty()) {
    const size_t channels = static_cast<size_t>(config.in_channels);
    if (source.mean.size() != channels || source.std.size() != channels)
      throw Error("--mean and --std need " + std::to_string(channels) + " values each (one per channel), got " +
                  std::to_string(source.mean.size()) + " and " + std::to_string(source.std.size()));
    for (float s : source.std)
      if (!(std::isfinite(s) && s > 0)) throw Error("--std values must be positive, got " + std::to_string(s));
    loaded.preprocessing.normalize = data::Normalize(source.mean, source.std);
    loaded.preprocessing.description += " (normalisation from --mean/--std)";
  }
  if (!source.classes.empty()) loaded.class_names = named_classes(source.classes, config.num_classes);
  else loaded.class_names = trainer_cli::class_names_or_indices(info.class_names, config.num_classes);
  return loaded;
}

// One image as the model takes it: resized, centre-cropped, scaled to [0, 1] and normalised, written
// into `out` (C·size·size floats).
inline void preprocess(const data::Image& original, const Preprocessing& p, float* out) {
  data::Image image = original;
  if (image.height != p.resize_to || image.width != p.resize_to)
    image = data::resize_bilinear(image, p.resize_to, p.resize_to);
  if (p.resize_to != p.size) {
    Generator unused;
    data::CenterCrop{p.size, p.size}(image, unused);
  }
  p.normalize.apply(image.pixels.data(), image.channels, p.size, p.size, out);  // exactly as the data loader does
}

}  // namespace image_trainer
