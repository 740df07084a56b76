// NVML through dlopen (no header needed) for the GPU harnesses: board power (mW), SM clock (MHz) and
// the energy counter (mJ since the driver loaded) of device 0 (the harness machines have one GPU).
#pragma once
#include <dlfcn.h>

struct Nvml {
  int (*power)(void*, unsigned*) = nullptr;
  int (*clock)(void*, int, unsigned*) = nullptr;
  int (*energy)(void*, unsigned long long*) = nullptr;
  void* dev = nullptr;
  bool open() {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!lib) return false;
    auto init = (int (*)())dlsym(lib, "nvmlInit_v2");
    auto handle = (int (*)(unsigned, void**))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    power = (int (*)(void*, unsigned*))dlsym(lib, "nvmlDeviceGetPowerUsage");
    clock = (int (*)(void*, int, unsigned*))dlsym(lib, "nvmlDeviceGetClockInfo");
    energy = (int (*)(void*, unsigned long long*))dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    return init && handle && power && clock && energy && init() == 0 && handle(0, &dev) == 0;
  }
  unsigned long long millijoules() { unsigned long long mj = 0; energy(dev, &mj); return mj; }
  unsigned smMHz() { unsigned mhz = 0; clock(dev, 1 /* NVML_CLOCK_SM */, &mhz); return mhz; }
};
