"""Which quantization a retrained version is served at when none is asked for."""

from trainer.export.gguf import quant_for

SMOLLM2_135M = 134_515_008


def test_a_model_under_a_billion_parameters_is_served_at_8_bits() -> None:
    # 4 bits cost SmolLM2-135M held-out answers (43 of 52 Jac call sites typed, 48 at Q8_0)
    assert quant_for(SMOLLM2_135M) == "Q8_0"


def test_a_larger_model_is_served_at_4_bits() -> None:
    assert quant_for(1_700_000_000) == "Q4_K_M"
    assert quant_for(8_030_000_000) == "Q4_K_M"
