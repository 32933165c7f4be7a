/* Owns the --model grammar: comma-separated layer items `kind[:value...][:key=value...]`,
 * residual groups `res(MAIN[|SHORTCUT])` (MAIN and SHORTCUT are layer lists starting from
 * the group's input; without SHORTCUT the input itself is added), and the preset names,
 * which expand to such specs for the data's shape. docs/models.md has the grammar. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nn/spec.h"

#define MAX_DEPTH 8

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Cuts *p at the first `sep` outside parentheses: returns the piece (NUL-terminated) and
 * moves *p past the separator (NULL after the last piece). */
static dpt_status_t next_piece(char **p, char sep, char **piece)
{
    int depth = 0;
    char *s = *p;
    *piece = s;
    for (; *s; s++) {
        if (*s == '(') depth++;
        if (*s == ')' && --depth < 0)
            return dpt_error(DPT_ERR_INVALID_ARG, "model spec: unbalanced ')' in '%s'", *piece);
        if (*s == sep && depth == 0) {
            *s = '\0';
            *p = s + 1;
            return DPT_OK;
        }
    }
    if (depth != 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: unclosed '(' in '%s'", *piece);
    *p = NULL;
    return DPT_OK;
}

static dpt_status_t build_list(dpt_model_t *m, char *text, int from, int *end, int depth);

/* res(MAIN[|SHORTCUT]) at the node `from`: both branches, then their add. */
static dpt_status_t build_res(dpt_model_t *m, char *item, int from, int *end, int depth)
{
    size_t len = strlen(item);
    if (depth >= MAX_DEPTH)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: res(...) nested deeper than %d",
                         MAX_DEPTH);
    if (item[len - 1] != ')')
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s': text after res(...)", item);
    item[len - 1] = '\0';
    char *rest = item + 4, *main, *shortcut = NULL;
    dpt_status_t s = next_piece(&rest, '|', &main);
    if (s == DPT_OK && rest) s = next_piece(&rest, '|', &shortcut);
    if (s != DPT_OK) return s;
    if (rest)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: res(MAIN|SHORTCUT) takes one '|', found more");
    int a = from, b = from;
    if (!*trim(main))
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: res() needs layers before '|'");
    s = build_list(m, main, from, &a, depth + 1);
    if (s == DPT_OK && shortcut) {
        if (!*trim(shortcut))
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "model spec: res(MAIN|) has an empty shortcut (leave out '|' for "
                             "the identity)");
        s = build_list(m, shortcut, from, &b, depth + 1);
    }
    if (s != DPT_OK) return s;
    const int in[2] = {a, b};
    return dpt_graph_add(m, &dpt_op_add, NULL, in, 2, end);
}

static dpt_status_t build_item(dpt_model_t *m, char *item, int from, int *end, int depth)
{
    if (!*item) return dpt_error(DPT_ERR_INVALID_ARG, "model spec: empty layer (two commas?)");
    if (strncmp(item, "res(", 4) == 0) return build_res(m, item, from, end, depth);
    if (strpbrk(item, "()|"))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: '%s': parentheses and '|' only go in res(MAIN|SHORTCUT)",
                         item);
    const dpt_op_t *op;
    dpt_spec_part_t args;
    dpt_status_t s = dpt_op_parse_item(item, strlen(item), &op, &args);
    return s == DPT_OK ? dpt_graph_add(m, op, &args, &from, 1, end) : s;
}

static dpt_status_t build_list(dpt_model_t *m, char *text, int from, int *end, int depth)
{
    int cur = from;
    char *rest = text, *item;
    while (rest) {
        dpt_status_t s = next_piece(&rest, ',', &item);
        if (s == DPT_OK) s = build_item(m, trim(item), cur, &cur, depth);
        if (s != DPT_OK) return s;
    }
    *end = cur;
    return DPT_OK;
}

dpt_status_t dpt_spec_build(dpt_model_t *m, const char *spec)
{
    char buf[DPT_MAX_SPEC + 1];
    snprintf(buf, sizeof buf, "%s", spec);
    int end;
    return build_list(m, buf, DPT_NODE_INPUT, &end, 0);
}

/* ---- presets ---------------------------------------------------------------------------- */

/* Presets spell out their initialisation, whatever the layers' defaults: He-normal
 * convolutions (He et al. 2015, which the ResNet paper and the usual batch-norm VGG recipes
 * use) and Xavier-uniform dense layers, the initialisation their documented results and
 * recipes (docs/models.md) were measured with. */

typedef struct {
    char *out;
    size_t cap, len;
    bool overflow;
} sbuf_t;

static void put(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->out + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        b->overflow = true;
    else
        b->len += (size_t)n;
}

/* He et al. 2016's CIFAR ResNet-(6n+2): 16-32-64 channels, n basic blocks per stage, the
 * parameter-free zero-padding shortcut ("option A") where a stage halves the size. */
static void resnet_cifar(sbuf_t *b, size_t n, dpt_shape_t in, size_t classes)
{
    put(b, "conv:16:3:bias=0:init=he,bn,relu");
    for (size_t stage = 0; stage < 3; stage++)
        for (size_t k = 0; k < n; k++) {
            size_t c = 16u << stage, s = stage > 0 && k == 0 ? 2 : 1;
            put(b, ",res(conv:%zu:3:stride=%zu:bias=0:init=he,bn,relu,conv:%zu:3:bias=0:init=he,bn",
                c, s, c);
            if (s == 2)
                put(b, "|zpad:%zu:stride=2),relu", c);
            else
                put(b, "),relu");
        }
    put(b, ",gap,dense:%zu:xavier", classes);
}

static void resnet20(sbuf_t *b, dpt_shape_t in, size_t k)
{
    resnet_cifar(b, 3, in, k);
}
static void resnet32(sbuf_t *b, dpt_shape_t in, size_t k)
{
    resnet_cifar(b, 5, in, k);
}
static void resnet56(sbuf_t *b, dpt_shape_t in, size_t k)
{
    resnet_cifar(b, 9, in, k);
}

/* ResNet-18 for small images (as is usual for CIFAR): a 3x3 stem without max pooling, then
 * torchvision's four stages of two basic blocks (64-128-256-512) with 1x1 projection
 * shortcuts where the shape changes. */
static void resnet18(sbuf_t *b, dpt_shape_t in, size_t classes)
{
    put(b, "conv:64:3:bias=0:init=he,bn,relu");
    size_t prev = 64;
    for (size_t stage = 0; stage < 4; stage++)
        for (size_t k = 0; k < 2; k++) {
            size_t c = 64u << stage, s = stage > 0 && k == 0 ? 2 : 1;
            put(b, ",res(conv:%zu:3:stride=%zu:bias=0:init=he,bn,relu,conv:%zu:3:bias=0:init=he,bn",
                c, s, c);
            if (s != 1 || c != prev)
                put(b, "|conv:%zu:1:stride=%zu:pad=0:bias=0:init=he,bn),relu", c, s);
            else
                put(b, "),relu");
            prev = c;
        }
    put(b, ",gap,dense:%zu:xavier", classes);
}

/* VGG with batch norm (Simonyan & Zisserman's configurations A and D), for small images:
 * a max pool is left out where the map is already below 2x2 (28-pixel inputs), and the
 * classifier is global average pooling and one dense layer, as CIFAR VGGs usually do. */
static void vgg(sbuf_t *b, const int *cfg, size_t n, dpt_shape_t in, size_t classes)
{
    size_t h = in.h, w = in.w;
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        if (cfg[i] > 0) {
            put(b, "%sconv:%d:3:bias=0:init=he,bn,relu", sep, cfg[i]);
        } else if (h >= 2 && w >= 2) {
            put(b, "%smaxpool:2", sep);
            h /= 2, w /= 2;
        } else {
            continue;
        }
        sep = ",";
    }
    put(b, ",gap,dense:%zu:xavier", classes);
}

static void vgg11(sbuf_t *b, dpt_shape_t in, size_t k)
{
    static const int cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    vgg(b, cfg, sizeof cfg / sizeof cfg[0], in, k);
}

static void vgg16(sbuf_t *b, dpt_shape_t in, size_t k)
{
    static const int cfg[] = {64, 64,  0,   128, 128, 0,   256, 256, 256,
                              0,  512, 512, 512, 0,   512, 512, 512, 0};
    vgg(b, cfg, sizeof cfg / sizeof cfg[0], in, k);
}

/* LeNet-5 with ReLU and max pooling; the first convolution pads by 2 so 28- and 32-pixel
 * inputs both fit. */
static void lenet5(sbuf_t *b, dpt_shape_t in, size_t k)
{
    put(b,
        "conv:6:5:pad=2:init=he,relu,maxpool:2,conv:16:5:pad=0:init=he,relu,maxpool:2,"
        "dense:120:xavier,relu,dense:84:xavier,relu,dense:%zu:xavier",
        k);
}

static const struct {
    const char *name, *about;
    void (*expand)(sbuf_t *, dpt_shape_t, size_t);
} presets[] = {
    {"lenet5", "LeNet-5 (ReLU, max pooling)", lenet5},
    {"resnet20", "CIFAR ResNet-20 (He et al. 2016, zero-padding shortcuts)", resnet20},
    {"resnet32", "CIFAR ResNet-32", resnet32},
    {"resnet56", "CIFAR ResNet-56", resnet56},
    {"resnet18", "ResNet-18 for small images (3x3 stem, projection shortcuts)", resnet18},
    {"vgg11", "VGG-11 with batch norm, GAP classifier", vgg11},
    {"vgg16", "VGG-16 with batch norm, GAP classifier", vgg16},
};

size_t dpt_model_preset_count(void)
{
    return sizeof presets / sizeof presets[0];
}
const char *dpt_model_preset_name(size_t i)
{
    return i < dpt_model_preset_count() ? presets[i].name : NULL;
}
const char *dpt_model_preset_about(size_t i)
{
    return i < dpt_model_preset_count() ? presets[i].about : NULL;
}

dpt_status_t dpt_preset_expand(const char *spec, dpt_shape_t in, size_t classes, char *out,
                               size_t cap)
{
    sbuf_t b = {out, cap, 0, false};
    out[0] = '\0';
    for (size_t i = 0; i < dpt_model_preset_count(); i++)
        if (strcmp(spec, presets[i].name) == 0) {
            presets[i].expand(&b, in, classes);
            break;
        }
    if (!b.len) put(&b, "%s", spec);
    if (b.overflow)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%.40s...' longer than %zu characters",
                         spec, cap - 1);
    return DPT_OK;
}
