package models

// Qwen2.5-VL (Bai et al., "Qwen2.5-VL Technical Report", arXiv:2502.13923) as
// huggingface/transformers src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py implements
// Qwen2_5_VLForConditionalGeneration: Qwen2-VL (qwen2vl.go) with a vision tower redesigned for
// speed at native resolution, and absolute time in the video positions:
//
//   - blocks of RMSNorm and a SwiGLU MLP with biases (Qwen2_5_VLVisionBlock, qwenVisionBlock's
//     Qwen25VL branch), the merger's ln_q an RMSNorm;
//   - window attention: most blocks attend within windows of window_size pixels a side
//     (window_size/patch/merge merged groups); the blocks of fullatt_block_indexes attend over the
//     whole frame. The tower reorders the merged groups window by window before the blocks
//     (get_window_index) and restores the processor's order after the merger
//     (hidden_states[argsort(window_index)]); windows are segments of a block-diagonal mask;
//   - a video's temporal M-RoPE position advances by second_per_grid_t × tokens_per_second per
//     temporal patch, images' stays 0 (get_rope_index; QwenRopeIndex).
//
// The decoder, the placeholders and the scopes are Qwen2-VL's.

// qwenWindowIndex is Qwen2.5-VL's get_window_index: the merged groups reordered window by window
// (window_size/patch/merge groups a side, each grid's last row and column of windows padded), and
// the windows' lengths in patches (the window-attention segments; empty windows have length 0).
func qwenWindowIndex(cfg QwenVisionConfig, grids []Grid) (order, lengths []int) {
	m := cfg.MergeSize
	ws := cfg.WindowSize / m / cfg.PatchSize
	offset := 0
	for _, gr := range grids {
		lh, lw := gr.H/m, gr.W/m
		// transformers pads by ws − l%ws, a whole empty window when l is a multiple of ws.
		nh, nw := (lh+ws-lh%ws)/ws, (lw+ws-lw%ws)/ws
		for t := range gr.T {
			for wh := range nh {
				for ww := range nw {
					cnt := 0
					for ih := range ws {
						for iw := range ws {
							h, w := wh*ws+ih, ww*ws+iw
							if h < lh && w < lw {
								order = append(order, offset+(t*lh+h)*lw+w)
								cnt++
							}
						}
					}
					lengths = append(lengths, cnt*m*m)
				}
			}
		}
		offset += gr.T * lh * lw
	}
	return order, lengths
}
