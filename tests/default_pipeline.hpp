#pragma once
// The default model in a Pipeline<Model> with a 2048-token context, loaded once per test program
// and shared by its cases (null when the model has not been fetched). Include after
// <turbine/turbine.hpp> or <turbine/turbine.cuh>.
#include <memory>
#include <string>

#include "test_support.hpp"

namespace turbine::test {

template <class Model>
Pipeline<Model>* default_pipeline() {
  static std::unique_ptr<Pipeline<Model>> pipe = [] {
    const std::string path = default_model_path();
    return path.empty() ? nullptr : std::make_unique<Pipeline<Model>>(path, PipelineOptions{"", 2048});
  }();
  return pipe.get();
}

}  // namespace turbine::test
