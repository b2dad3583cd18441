// What a cct_text checkpoint records about its data beyond the model (whose file also holds the
// vocabulary, so the file alone classifies raw text): the data set's name and its class names.
#pragma once

#include <string>
#include <vector>

#include <cct/io/json.hpp>
#include <cct/io/safetensors.hpp>

namespace text_trainer {

struct TextDataInfo {
  std::string dataset;  // "trec", "ag_news", ...
  std::vector<std::string> class_names;
};

inline TextDataInfo read_text_data_info(const cct::io::SafeTensorsReader& reader) {
  TextDataInfo info;
  const auto& metadata = reader.metadata();
  auto it = metadata.find("data.class_names");
  if (it != metadata.end()) {
    const cct::json::Value names = cct::json::parse(it->second);  // named: a temporary would die before the loop body
    if (!names.is_array())
      throw cct::IoError("checkpoint '" + reader.path() + "': metadata 'data.class_names' is not a list of names");
    for (const auto& v : names.as_array()) info.class_names.push_back(v.as_string());
  }
  if ((it = metadata.find("data.dataset")) != metadata.end()) info.dataset = it->second;
  return info;
}

}  // namespace text_trainer
