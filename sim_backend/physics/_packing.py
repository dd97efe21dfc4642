"""Index constants of the kernel's packed arrays: ``ip`` (int64) and ``fp`` (float64).

A few flat arrays instead of a tuple of dozens keeps numba's per-call argument and reference
counting cost negligible (the network function runs ~10⁵ times per simulated 100 ns).
ip[0:N_HEADER] holds counts and the offsets of every sub-array; sub-arrays follow.
"""

# counts
NN, NB, NW, NR, NCS, NVS, NCL = range(7)
# offsets into ip
CL_OF_NODE, CL_REP, BR_P, BR_N, BR_NL, BR_WIRE, W_BR, W_MODE, R_P, R_N, CS_P, CS_N, VS_P, VS_N, \
    PWL_OFF, PWL_LEN = range(7, 23)
# offsets into fp
BR_L0, BR_ISW, W_IHS, W_K, W_RN, W_DELTA, W_ISW, W_SIGMA, R_G, PWL_T, PWL_V = range(23, 34)
N_HEADER = 34

# The waveforms' arrays come last in each: the rest is the structure's, packed once per structure.
INT_FIELDS = ("cl_of_node", "cl_rep", "br_p", "br_n", "br_nl", "br_wire", "w_br", "w_mode",
              "r_p", "r_n", "cs_p", "cs_n", "vs_p", "vs_n", "pwl_off", "pwl_len")
FLOAT_FIELDS = ("br_l0", "br_isw", "w_ihs", "w_k", "w_rn", "w_delta", "w_isw", "w_sigma", "r_g",
                "pwl_t", "pwl_v")
