/* Owns the number formatter (src/core/fmt.h). */
#include "core/fmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dpt_fmt_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) return snprintf(buf, cap, "nan");
    if (isinf(v)) return snprintf(buf, cap, v > 0 ? "inf" : "-inf");
    char tmp[40];
    /* %.6g keeps small integers and most rates positional (100000, 0.05) rather than 1e+05;
     * the loop adds digits until the text reads back exactly (at most 17 for a double). */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    return snprintf(buf, cap, "%s", tmp);
}

int dpt_fprint_double(FILE *f, double v)
{
    char buf[40];
    dpt_fmt_double(buf, sizeof buf, v);
    return fputs(buf, f) < 0 ? -1 : (int)strlen(buf);
}
