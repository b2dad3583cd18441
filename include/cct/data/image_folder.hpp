// Reader for image-folder data sets: root/<class>/<file>.{png,jpg,jpeg,bmp}, like torchvision's ImageFolder.
//
// Classes are the sub-folders of root sorted by name (label = position), files within a class are
// sorted by name, so the same folder always gives the same dataset. Files are decoded in parallel
// (cct::parallel_for; each thread decodes whole files) with stb_image.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"
#include "image_io.hpp"
#include "transforms.hpp"

namespace cct::data {

struct ImageFolderOptions {
  int channels = 3;     // every image is converted to 1 (grayscale) or 3 (RGB) channels
  int64_t height = 0;   // > 0 (with width): resize every image to height × width (antialiased bilinear);
  int64_t width = 0;    // 0: keep the stored size, which must then be the same for every image
  std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp"};  // matched case-insensitively
};

namespace detail {
inline std::string lower_case(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}
}  // namespace detail

// Reads root/<class>/<image> into memory. Throws cct::IoError for a missing root, a root without
// class folders, a class folder without images, an image that does not decode (naming the file), or
// (without resizing) an image whose size differs from the first one's.
inline ImageDataset read_image_folder(const std::string& root, const ImageFolderOptions& options = {}) {
  namespace fs = std::filesystem;
  CCT_CHECK(options.channels == 1 || options.channels == 3, "read_image_folder: channels must be 1 or 3, got ",
            options.channels);
  CCT_CHECK((options.height > 0) == (options.width > 0), "read_image_folder: give both height and width, or neither");
  std::error_code error;
  if (!fs::is_directory(root, error)) throw IoError("image folder: '" + root + "' is missing or not a directory");

  std::vector<std::string> extensions;
  for (const std::string& ext : options.extensions) extensions.push_back(detail::lower_case(ext));
  std::vector<std::string> class_names;
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  try {
    for (const fs::directory_entry& entry : fs::directory_iterator(root))
      if (entry.is_directory()) class_names.push_back(entry.path().filename().string());
    std::sort(class_names.begin(), class_names.end());
    if (class_names.empty()) throw IoError("image folder: '" + root + "' has no class sub-folders");

    for (size_t label = 0; label < class_names.size(); ++label) {
      const fs::path class_dir = fs::path(root) / class_names[label];
      std::vector<std::string> class_files;
      for (const fs::directory_entry& entry : fs::directory_iterator(class_dir)) {
        if (!entry.is_regular_file()) continue;
        const std::string ext = detail::lower_case(entry.path().extension().string());
        if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end())
          class_files.push_back(entry.path().string());
      }
      if (class_files.empty())
        throw IoError("image folder: class folder '" + class_dir.string() + "' holds no images with a supported extension");
      std::sort(class_files.begin(), class_files.end());
      files.insert(files.end(), class_files.begin(), class_files.end());
      labels.insert(labels.end(), class_files.size(), static_cast<int64_t>(label));
    }
  } catch (const fs::filesystem_error& e) {
    // Unreadable folders (permissions, a folder removed while listing) surface as cct::IoError too.
    throw IoError(std::string("image folder: cannot list '") + root + "': " + e.what());
  }

  // Decode in parallel. Exceptions must not leave an OpenMP region, so each file records its error and
  // the first failing file (in file order, for a deterministic message) is reported afterwards.
  const auto count = static_cast<int64_t>(files.size());
  std::vector<Image> decoded(files.size());
  std::vector<std::string> errors(files.size());
  parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        Image image = read_image(files[static_cast<size_t>(i)], options.channels);
        if (options.height > 0 && (image.height != options.height || image.width != options.width))
          image = resize_bilinear(image, options.height, options.width);
        decoded[static_cast<size_t>(i)] = std::move(image);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    }
  });
  for (const std::string& message : errors)
    if (!message.empty()) throw IoError("image folder: " + message);

  const Image& first = decoded.front();
  for (int64_t i = 1; i < count; ++i) {
    const Image& image = decoded[static_cast<size_t>(i)];
    if (image.height != first.height || image.width != first.width)
      throw IoError("image folder: '" + files[static_cast<size_t>(i)] + "' is " + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + " but '" + files.front() + "' is " + std::to_string(first.width) +
                    "x" + std::to_string(first.height) + " (set height and width to resize)");
  }
  const int64_t numel = first.numel();
  Tensor<uint8_t> images = Tensor<uint8_t>::empty({count, first.channels, first.height, first.width});
  parallel_for(0, count, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      std::memcpy(images.data() + i * numel, decoded[static_cast<size_t>(i)].pixels.data(), static_cast<size_t>(numel));
  });
  return ImageDataset(images, std::move(labels), std::move(class_names));
}

}  // namespace cct::data
