// turbine chat: read a line, stream the reply, keep the history. /reset and /exit.
#include <iostream>

#include "cli_common.hpp"

namespace turbine::cli {

void run_chat(CommonOptions& o, const std::string& system_prompt) {
  const Colors color;
  const std::string path = resolve_model(o.model);
  std::fprintf(stderr, "%sloading %s ...%s\n", color.dim(), path.c_str(), color.reset());
  Pipeline<CpuModel> pipe(path, pipeline_options(o));
  ChatSession<CpuModel> session(pipe, system_prompt);
  std::fprintf(stderr, "%s%s: %lld layers, hidden %lld, chat template '%s', context %lld. Type /reset to clear the history, /exit to quit.%s\n",
               color.dim(), architecture_name(pipe.config().arch), static_cast<long long>(pipe.config().num_layers),
               static_cast<long long>(pipe.config().hidden_size), pipe.chat_template().c_str(),
               static_cast<long long>(pipe.context_size()), color.reset());
  std::string line;
  for (;;) {
    std::printf("%s>>> %s", color.user(), color.reset());
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      session.reset();
      std::printf("%s(history cleared)%s\n", color.dim(), color.reset());
      continue;
    }
    if (line.empty()) continue;
    std::printf("%s", color.assistant());
    try {
      const Response r = session.say(line, o.gen, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      const double tps = r.decode_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.decode_seconds : 0.0;
      std::printf("%s\n%s[%zu tokens, %.1f tokens/s, %s]%s\n", color.reset(), color.dim(), r.tokens.size(), tps,
                  finish_reason_name(r.finish_reason), color.reset());
    } catch (const Error& e) {  // e.g. the conversation outgrew the context: say so, keep chatting
      std::printf("%s\n", color.reset());
      std::fprintf(stderr, "turbine: %s (use /reset)\n", e.what());
    }
  }
  std::printf("\n");
}

}  // namespace turbine::cli
