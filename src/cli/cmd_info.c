/* dptrain info: not built yet; says so instead of pretending. */
#include <stdio.h>

#include "cli/cli.h"

int dpt_cmd_info(int argc, char **argv)
{
    fprintf(stderr, "dptrain info: not available in this version yet\n");
    return dpt_status_exit_code(DPT_ERR_UNSUPPORTED);
}
