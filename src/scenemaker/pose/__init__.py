"""Pose estimation: PoseDiT (a diffusion transformer over all objects jointly), its training
data, flow-matching training and sampling, and baselines behind one interface."""
