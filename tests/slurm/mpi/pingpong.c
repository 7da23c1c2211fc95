/* pingpong [ITERS]: ranks 0 and 1 bounce a message; rank 0 prints the
 * half round trip of 8 bytes in microseconds and the bandwidth of 1 MiB
 * messages in MB/s: "lat_us=L bw_MBps=B". The first tenth of the
 * iterations warm up and are not timed. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double bounce(int rank, char *buf, int bytes, int iters) {
  int warm = iters / 10;
  double start = 0;
  for (int i = 0; i < warm + iters; ++i) {
    if (i == warm) {
      MPI_Barrier(MPI_COMM_WORLD);
      start = MPI_Wtime();
    }
    if (rank == 0) {
      MPI_Send(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
    }
  }
  return (MPI_Wtime() - start) / iters / 2;
}

int main(int argc, char **argv) {
  int rank, iters = argc > 1 ? atoi(argv[1]) : 1000;
  const int big = 1 << 20;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char *buf = calloc(1, big);
  double lat = bounce(rank, buf, 8, iters);
  double per = bounce(rank, buf, big, iters / 10 > 10 ? iters / 10 : 10);
  if (rank == 0) printf("lat_us=%.3f bw_MBps=%.0f\n", lat * 1e6, big / per / 1e6);
  free(buf);
  MPI_Finalize();
  return 0;
}
