/* Encodes raw I420 frames (stdin) as VP9 K-SVC: three spatial layers (1/4, 1/2, 1), three
 * temporal layers (0-2-1-2), upper spatial layers predicted from the lower only in key pictures,
 * a key picture every second. Writes the bots' layered media (stdout), one record per layer
 * frame; see loadtest/src/media.rs for the format.
 *   ffmpeg -f lavfi -i testsrc2=size=640x360:rate=30 -t 4 -pix_fmt yuv420p -f rawvideo - |
 *     ./svc-encode 640 360 > bot-vp9-svc.bin */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

#define SPATIAL 3
#define TEMPORAL 3

static void put16(uint16_t v) { fputc(v >> 8, stdout); fputc(v & 0xff, stdout); }
static void put32(uint32_t v) { put16(v >> 16); put16(v & 0xffff); }

static void die(vpx_codec_ctx_t *c, const char *what) {
  fprintf(stderr, "%s: %s\n", what, c ? vpx_codec_error_detail(c) : "");
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: svc-encode WIDTH HEIGHT < i420 > out\n"), 2;
  const unsigned w = atoi(argv[1]), h = atoi(argv[2]);
  const unsigned kbps[SPATIAL] = {60, 150, 350};
  vpx_codec_enc_cfg_t cfg;
  if (vpx_codec_enc_config_default(vpx_codec_vp9_cx(), &cfg, 0)) die(NULL, "config");
  cfg.g_w = w;
  cfg.g_h = h;
  cfg.g_timebase.num = 1;
  cfg.g_timebase.den = 30;
  cfg.g_lag_in_frames = 0;
  cfg.g_error_resilient = 0;
  cfg.rc_end_usage = VPX_CBR;
  cfg.rc_dropframe_thresh = 0;
  cfg.rc_min_quantizer = 2;
  cfg.rc_max_quantizer = 52;
  cfg.rc_undershoot_pct = 50;
  cfg.rc_overshoot_pct = 50;
  cfg.rc_buf_initial_sz = 500;
  cfg.rc_buf_optimal_sz = 600;
  cfg.rc_buf_sz = 1000;
  cfg.kf_mode = VPX_KF_AUTO;
  cfg.kf_min_dist = cfg.kf_max_dist = 30;
  cfg.ss_number_layers = SPATIAL;
  cfg.ts_number_layers = TEMPORAL;
  cfg.ts_rate_decimator[0] = 4;
  cfg.ts_rate_decimator[1] = 2;
  cfg.ts_rate_decimator[2] = 1;
  cfg.ts_periodicity = 4;
  cfg.ts_layer_id[0] = 0;
  cfg.ts_layer_id[1] = 2;
  cfg.ts_layer_id[2] = 1;
  cfg.ts_layer_id[3] = 2;
  cfg.temporal_layering_mode = VP9E_TEMPORAL_LAYERING_MODE_0212;
  unsigned total = 0;
  for (int s = 0; s < SPATIAL; s++) {
    /* Cumulative over temporal layers: T0 60%, T0+T1 80%, all. */
    cfg.layer_target_bitrate[s * TEMPORAL + 0] = kbps[s] * 6 / 10;
    cfg.layer_target_bitrate[s * TEMPORAL + 1] = kbps[s] * 8 / 10;
    cfg.layer_target_bitrate[s * TEMPORAL + 2] = kbps[s];
    total += kbps[s];
  }
  cfg.rc_target_bitrate = total;
  vpx_codec_ctx_t codec;
  if (vpx_codec_enc_init(&codec, vpx_codec_vp9_cx(), &cfg, 0)) die(&codec, "init");
  vpx_svc_extra_cfg_t svc;
  memset(&svc, 0, sizeof svc);
  for (int i = 0; i < SPATIAL * TEMPORAL; i++) {
    svc.max_quantizers[i] = 52;
    svc.min_quantizers[i] = 2;
  }
  for (int s = 0; s < SPATIAL; s++) {
    svc.scaling_factor_num[s] = 1;
    svc.scaling_factor_den[s] = 1 << (SPATIAL - 1 - s);
  }
  if (vpx_codec_control(&codec, VP9E_SET_SVC, 1)) die(&codec, "svc");
  if (vpx_codec_control(&codec, VP9E_SET_SVC_PARAMETERS, &svc)) die(&codec, "svc parameters");
  /* libvpx INTER_LAYER_PRED_OFF_NONKEY (vp9/encoder/vp9_svc_layercontext.h, not public). */
  if (vpx_codec_control(&codec, VP9E_SET_SVC_INTER_LAYER_PRED, 2))
    die(&codec, "inter-layer prediction");
  vpx_codec_control(&codec, VP8E_SET_CPUUSED, 7);
  vpx_codec_control(&codec, VP9E_SET_NOISE_SENSITIVITY, 0);
  vpx_codec_control(&codec, VP8E_SET_STATIC_THRESHOLD, 1);

  vpx_image_t img;
  if (!vpx_img_alloc(&img, VPX_IMG_FMT_I420, w, h, 1)) die(NULL, "image");
  const size_t size = w * h * 3 / 2;
  fwrite("SVC1", 1, 4, stdout);
  put16(w);
  put16(h);
  fputc(SPATIAL, stdout);
  fputc(TEMPORAL, stdout);
  put16(30);
  uint32_t picture = 0;
  for (;; picture++) {
    /* The planes are contiguous in an image allocated with alignment 1. */
    if (fread(img.planes[0], 1, size, stdin) != size) break;
    if (vpx_codec_encode(&codec, &img, picture, 1, 0, VPX_DL_REALTIME)) die(&codec, "encode");
    vpx_svc_layer_id_t layer;
    vpx_codec_control(&codec, VP9E_GET_SVC_LAYER_ID, &layer);
    vpx_codec_iter_t iter = NULL;
    const vpx_codec_cx_pkt_t *pkt;
    while ((pkt = vpx_codec_get_cx_data(&codec, &iter))) {
      if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
      const uint8_t *data = pkt->data.frame.buf;
      size_t len = pkt->data.frame.sz;
      int key = !!(pkt->data.frame.flags & VPX_FRAME_IS_KEY);
      /* The superframe index (VP9 Annex B) gives each spatial layer's frame. */
      uint8_t marker = data[len - 1];
      size_t sizes[8];
      int frames = 1;
      sizes[0] = len;
      if ((marker & 0xe0) == 0xc0) {
        frames = (marker & 7) + 1;
        int mag = ((marker >> 3) & 3) + 1;
        size_t index = 2 + mag * frames;
        if (len >= index && data[len - index] == marker) {
          const uint8_t *p = data + len - index + 1;
          for (int f = 0; f < frames; f++, p += mag) {
            sizes[f] = 0;
            for (int b = 0; b < mag; b++) sizes[f] |= (size_t)p[b] << (8 * b);
          }
        } else {
          frames = 1;
        }
      }
      int s = 0;
      for (int f = 0; f < frames; f++) {
        while (s < SPATIAL && !pkt->data.frame.spatial_layer_encoded[s]) s++;
        if (s >= SPATIAL) die(NULL, "more frames than spatial layers");
        put32(picture);
        fputc(s, stdout);
        fputc(layer.temporal_layer_id, stdout);
        fputc(key ? 1 : 0, stdout);
        fputc(0, stdout);
        put16(w >> (SPATIAL - 1 - s));
        put16(h >> (SPATIAL - 1 - s));
        put32(sizes[f]);
        fwrite(data, 1, sizes[f], stdout);
        data += sizes[f];
        s++;
      }
    }
  }
  vpx_img_free(&img);
  vpx_codec_destroy(&codec);
  fprintf(stderr, "%u pictures\n", picture);
  return 0;
}
