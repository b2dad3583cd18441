// Image data: CIFAR, IDX (MNIST) and image-folder readers, PNG/JPEG decoding and writing (stb), the
// data loader with its shards, and augmentation. Brings in the core library's tensors.
#pragma once

#include "data/augment.hpp"
#include "data/cifar.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/image_folder.hpp"
#include "data/image_io.hpp"
#include "data/loader.hpp"
#include "data/transforms.hpp"
#include "data/shard.hpp"
