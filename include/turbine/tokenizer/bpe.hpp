#pragma once
// BPE models: byte-level (GPT-2 family) and SentencePiece-style (Llama-2 family). Both run the
// same heap-driven merge loop (bpe_merge.hpp) and differ in their symbols and merge order.
#include "byte_level_bpe.hpp"
#include "sentencepiece_bpe.hpp"
