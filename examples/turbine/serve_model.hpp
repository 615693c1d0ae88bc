#pragma once
// turbine serve for one model type: loads the model, starts the continuous-batching engine on it
// and serves it over HTTP (serve_backend, serve_command.cpp). A template, so each backend's
// translation unit (run_cpu.cpp, run_cuda.cu) instantiates it; the HTTP server compiles once.
#include <cstdio>
#include <string>

#include <turbine/serve/backend.hpp>

#include "cli_common.hpp"
#include "serve_command.hpp"

namespace turbine::cli {

template <class Model>
void run_serve(CommonOptions& o, const ServeOptions& s) {
  block_stop_signals();  // before the engine's thread starts
  const std::string path = resolve_model(o.model);
  std::fprintf(stderr, "loading %s ...\n", path.c_str());
  Pipeline<Model> pipe(path, pipeline_options(o));
  EngineOptions eo{s.max_concurrent, s.max_prefill_tokens, s.max_queued, 0};
  apply_cache_options(s.cache, pipe.model(), eo);
  Engine<Model> engine(pipe, eo);
  const std::string where = Model::spec::backend::is_gpu ? std::string("GPU, ") + o.dtype
                                                         : "CPU with " + std::to_string(default_pool().size()) + " threads";
  serve_backend(serve::make_backend(pipe, engine), s, path, where);
  engine.shutdown();
}

}  // namespace turbine::cli
