/* Links the installed C ABI (libtracemark) through find_package(tracemark). */
#include <stdio.h>

#include "tracemark/tracemark.h"

int main(void) {
  printf("libtracemark %s\n", tracemark_version());
  return 0;
}
