// cct: the umbrella header. Includes every public header and nothing else.
#pragma once

#include "config.hpp"
#include "core/generator.hpp"
#include "core/parallel.hpp"
#include "core/shape.hpp"
#include "core/storage.hpp"
#include "core/tensor.hpp"
#include "autograd/engine.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "ops/activation.hpp"
#include "ops/elementwise.hpp"
