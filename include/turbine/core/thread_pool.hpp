#pragma once
// A fixed pool of worker threads with a blocking parallel_for. The CPU backend splits every
// matrix product across it; one pool per process is enough (see default_pool()).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine {

class ThreadPool {
 public:
  explicit ThreadPool(int threads = 0) {
    if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
    size_ = threads;
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return size_; }

  /// Calls fn(begin, end) on disjoint chunks covering [0, n), one chunk per thread, and waits.
  /// Chunks are multiples of `grain` (except the last) so callers can keep blocks whole.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1) {
    if (n <= 0) return;
    const int64_t blocks = (n + grain - 1) / grain;
    const int parts = static_cast<int>(std::min<int64_t>(size_, blocks));
    if (parts <= 1) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> call_lock(call_mu_);  // one parallel_for at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      n_ = n;
      grain_ = grain;
      parts_ = parts;
      pending_ = parts - 1;
      ++generation_;
    }
    cv_.notify_all();
    run_part(0);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void run_part(int part) {
    const int64_t blocks = (n_ + grain_ - 1) / grain_;
    const int64_t b0 = blocks * part / parts_, b1 = blocks * (part + 1) / parts_;
    const int64_t begin = std::min(n_, b0 * grain_), end = std::min(n_, b1 * grain_);
    if (begin < end) (*job_)(begin, end);
  }
  void worker(int index) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= parts_) continue;
      lock.unlock();
      run_part(index);
      lock.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  int size_ = 1;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  int parts_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

/// The process-wide pool, sized to the machine (TURBINE_THREADS overrides).
inline ThreadPool& default_pool() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("TURBINE_THREADS")) return std::atoi(env);
    return 0;
  }());
  return pool;
}

}  // namespace turbine
