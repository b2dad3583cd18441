// What an image checkpoint records about its data beyond the model: the class names and the
// normalisation (mean and std per channel), so `predict` and `eval` preprocess exactly as training did.
#pragma once

#include <string>
#include <vector>

#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>

namespace image_trainer {

struct DataInfo {
  std::vector<std::string> class_names;
  std::vector<float> mean, std;
};

inline std::string floats_to_json(const std::vector<float>& values) {
  cct::json::Array array;
  for (float v : values) array.push_back(cct::json::Value(static_cast<double>(v)));
  return cct::json::dump(cct::json::Value(array));
}

inline std::vector<float> floats_from_json(const std::string& text, const std::string& what) {
  std::vector<float> out;
  const cct::json::Value parsed = cct::json::parse(text);  // named: a temporary would die before the loop body
  if (!parsed.is_array()) throw cct::IoError(what + " is not a list of numbers");
  for (const auto& v : parsed.as_array()) out.push_back(static_cast<float>(v.as_double()));
  return out;
}

// The normalisation entries ("data.mean", "data.std"); class names are written by cct::train::fit.
inline void write_normalisation(cct::io::Metadata& metadata, const DataInfo& info) {
  metadata["data.mean"] = floats_to_json(info.mean);
  metadata["data.std"] = floats_to_json(info.std);
}

inline DataInfo read_data_info(const cct::io::SafeTensorsReader& reader) {
  DataInfo info;
  const auto& metadata = reader.metadata();
  const std::string where = "checkpoint '" + reader.path() + "': metadata ";
  auto it = metadata.find("data.class_names");
  if (it != metadata.end()) {
    const cct::json::Value names = cct::json::parse(it->second);
    if (!names.is_array()) throw cct::IoError(where + "'data.class_names' is not a list of names");
    for (const auto& v : names.as_array()) info.class_names.push_back(v.as_string());
  }
  if ((it = metadata.find("data.mean")) != metadata.end()) info.mean = floats_from_json(it->second, where + "'data.mean'");
  if ((it = metadata.find("data.std")) != metadata.end()) info.std = floats_from_json(it->second, where + "'data.std'");
  return info;
}

}  // namespace image_trainer
