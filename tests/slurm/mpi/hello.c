/* hello [shm]: one line per rank, "rank R of N mnt=I ipc=I", with the mount
 * and IPC namespace inodes it runs in (ranks sharing a container print the
 * same ones). With "shm", rank 0 makes a SysV segment, writes into it and
 * sends its id to every rank; each rank attaches it and adds "shm=ok" when
 * it reads rank 0's bytes there, else "shm=fail:ERRNO". With "cma", rank 0
 * sends its pid and the address of a buffer; each other rank reads the buffer
 * with process_vm_readv (cross-memory attach, what UCX's cma transport and
 * Open MPI's single copy use) and adds "cma=ok", else "cma=fail:ERRNO". */
#define _GNU_SOURCE  /* process_vm_readv */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned long inode(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static void shm_check(int rank, char *out, size_t len) {
  int id = -1;
  char *p = NULL;
  if (rank == 0) {
    id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    if (id >= 0) {
      p = shmat(id, NULL, 0);
      if (p != (void *)-1) strcpy(p, "written by rank 0");
    }
  }
  MPI_Bcast(&id, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank != 0) p = id >= 0 ? shmat(id, NULL, SHM_RDONLY) : (void *)-1;
  if (p == (void *)-1) {
    snprintf(out, len, " shm=fail:%d", errno);
  } else {
    snprintf(out, len, strcmp(p, "written by rank 0") == 0 ? " shm=ok" : " shm=fail:content");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0 && id >= 0) shmctl(id, IPC_RMID, NULL);
}

static void cma_check(int rank, char *out, size_t len) {
  static char buffer[32] = "written by rank 0";
  long where[2] = {(long)getpid(), (long)buffer};
  MPI_Bcast(where, 2, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank != 0) {
    char got[32] = "";
    struct iovec local = {got, sizeof got}, remote = {(void *)where[1], sizeof got};
    ssize_t n = process_vm_readv((pid_t)where[0], &local, 1, &remote, 1, 0);
    if (n < 0) {
      snprintf(out, len, " cma=fail:%d", errno);
    } else {
      snprintf(out, len, strcmp(got, buffer) == 0 ? " cma=ok" : " cma=fail:content");
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char** argv) {
  int rank = -1, size = -1;
  char extra[64] = "";
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc > 1 && strcmp(argv[1], "shm") == 0) shm_check(rank, extra, sizeof extra);
  if (argc > 1 && strcmp(argv[1], "cma") == 0) cma_check(rank, extra, sizeof extra);
  printf("rank %d of %d mnt=%lu ipc=%lu%s\n", rank, size, inode("/proc/self/ns/mnt"),
         inode("/proc/self/ns/ipc"), extra);
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
