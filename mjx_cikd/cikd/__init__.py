"""What CIKD adds to an ensemble (paper section 4): policy selection at episode starts (4.3), the
statistic R_k and the teacher election (4.4), and the inter-agent distillation (Eq. 1)."""
