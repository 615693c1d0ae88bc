// The CPU model type of the CLI, instantiated in its own translation unit.
#include "commands.hpp"

namespace turbine::cli {

void run_on_cpu(const Command& cmd, CommonOptions& o) { run_command<CpuModel>(cmd, o); }

}  // namespace turbine::cli
