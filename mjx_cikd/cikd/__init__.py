"""What CIKD adds to an ensemble (paper section 4): policy selection at episode starts (4.3), the
statistic R_k and the teacher election (4.4), the inter-agent distillation (Eq. 1), and the phase
point that runs them (or the "(extra)" and learning-rate controls) when one falls due."""
