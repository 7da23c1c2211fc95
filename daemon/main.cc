// berthd: the per-node launcher daemon (placeholder until the service lands).
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("berthd version %s\n", BERTH_VERSION);
    return 0;
  }
  std::fprintf(stderr, "FATAL:   berthd: the launcher service is not built yet\n");
  return 255;
}
