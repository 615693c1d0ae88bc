#pragma once
// How much memory the system could still give this process: MemAvailable of /proc/meminfo (free
// memory plus caches it can drop). The KV budget is a fraction of it.
#include <cstdint>
#include <fstream>
#include <string>

namespace turbine {

/// Bytes the system reports available (MemAvailable), or 0 when it cannot tell.
inline uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

}  // namespace turbine
