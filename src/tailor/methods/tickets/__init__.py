"""Robust tickets (Fu et al., DAC 2023): robust_pretrain -> draw_ticket -> transfer."""
