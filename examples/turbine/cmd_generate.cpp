// turbine generate: one-shot generation for prompts from flags or a file, text or JSON output.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"

namespace turbine::cli {

void run_generate(CommonOptions& o, std::vector<std::string> prompts, const std::string& prompts_file, bool json, bool raw) {
  if (!prompts_file.empty()) {
    std::ifstream in(prompts_file);
    check(in.good(), prompts_file, ": cannot read the prompts file");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(line);
  }
  check(!prompts.empty(), "no prompt given (use -p TEXT or -f FILE)");
  if (o.gen.max_new_tokens == 512 && raw) o.gen.max_new_tokens = 128;
  Pipeline<CpuModel> pipe(resolve_model(o.model), pipeline_options(o));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const bool stream = !json;
    StreamCallback cb;
    if (stream) cb = [](std::string_view p) { std::fwrite(p.data(), 1, p.size(), stdout); std::fflush(stdout); return true; };
    const Response r = raw ? pipe.complete(prompts[i], o.gen, cb) : pipe.chat({{"user", prompts[i]}}, o.gen, cb);
    if (json) {
      nlohmann::json j = {{"prompt", prompts[i]},
                          {"text", r.text},
                          {"tokens", r.tokens},
                          {"prompt_tokens", r.prompt_tokens},
                          {"generated_tokens", r.tokens.size()},
                          {"finish_reason", finish_reason_name(r.finish_reason)},
                          {"prefill_seconds", r.prefill_seconds},
                          {"decode_seconds", r.decode_seconds}};
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::printf("\n");
      if (i + 1 < prompts.size()) std::printf("---\n");
    }
  }
}

}  // namespace turbine::cli
