/* dptrain lr-find: not built yet; says so instead of pretending. */
#include <stdio.h>

#include "cli/cli.h"

int dpt_cmd_lr_find(int argc, char **argv)
{
    fprintf(stderr, "dptrain lr-find: not available in this version yet\n");
    return dpt_status_exit_code(DPT_ERR_UNSUPPORTED);
}
