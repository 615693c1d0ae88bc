#pragma once
// How much memory the system could still give this process: MemAvailable of /proc/meminfo (free
// memory plus caches it can drop). The KV budget is a fraction of it.
#include <cstdint>
#include <fstream>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

/// Gives the heap's free pages back to the system (glibc keeps what freed blocks leave in every
/// thread's arena until told; elsewhere a no-op). The serving engine calls it when it goes idle, so
/// a burst of requests does not leave the server's resident memory raised.
inline void release_free_heap() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

}  // namespace turbine
