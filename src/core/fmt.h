/* Numbers as people read them: the one formatter of every double dptrain writes to a text
 * file (metrics.csv, steps.csv, schedule CSV, config.txt, descriptions, lr-find CSV). */
#ifndef DPT_CORE_FMT_H
#define DPT_CORE_FMT_H

#include <stddef.h>
#include <stdio.h>

/* Writes the shortest of the %.6g ... %.17g forms of v that strtod reads back to exactly v
 * (0.05, 0.9, 1e-05, 1489.6745159791574), as Python's repr and Keras's CSVLogger write
 * them; "nan", "inf", "-inf" for non-finite values. Returns the length (as snprintf). */
int dpt_fmt_double(char *buf, size_t cap, double v);
/* The same, to a stream; returns what fprintf returns. */
int dpt_fprint_double(FILE *f, double v);

#endif
