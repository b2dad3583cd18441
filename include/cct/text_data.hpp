// Text data: tokenizer, vocabulary, the text data sets (TREC, AG News, sentence files) and word
// vectors (GloVe).
#pragma once

#include "text/datasets.hpp"
#include "text/tokenizer.hpp"
#include "text/vocabulary.hpp"
#include "text/word_vectors.hpp"
