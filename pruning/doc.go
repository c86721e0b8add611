// Package pruning drops the redundant tokens of a video before (or inside) its encoder:
//
//   - stts.go: STTS, learned spatio-temporal token scoring inside the vision encoder ("Unified
//     Spatio-Temporal Token Scoring for Efficient Video VLMs", arXiv:2603.18004), the random-
//     pruning baseline, and Selector, the models.TokenSelector that applies a pruning mode;
//   - spatiotemporal.go: spatiotemporal token pruning, the training-free raw-pixel rules of
//     "Video-Based Reward Modeling for Computer-Use Agents" (arXiv:2603.10178; the paper trains
//     its ExeVRM reward model with them);
//   - packing.go: first-fit-decreasing packing of the variable numbers of kept tokens into rows
//     with a block-diagonal attention mask.
//
// Turning a video into tokens in the first place is package videotok.
package pruning
