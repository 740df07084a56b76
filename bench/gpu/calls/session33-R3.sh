#!/bin/sh
# Session 33 call R3: the text encoders' real checkpoint layout through `npx compile --weights`. For each family,
# bench/gpu/text_encoder_check.py builds the vision-language model the pipeline ships (Qwen2_5_VLForConditionalGeneration,
# Mistral3ForConditionalGeneration) at the text encoder's full config with transformers' own seeded initialisation,
# writes it with save_pretrained, and computes the bundled export's output with the language model's weights; the bundled
# compiler (.gpu/compiler, this tree) compiles the bundled export from that folder (--weights: the language model's prefix
# found, the vision tower and LM head left, RoPE's inv_freq from config.json) and run-cli runs it on the same ids.
set -u
W=/tmp/r3; rm -rf $W; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
python3 -c "import transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__)"
for fam in qwen mistral; do
  case $fam in qwen) G=qwen2_5_vl_7b_text_encoder ;; *) G=mistral_small_3_1_text_encoder ;; esac
  python3 bench/gpu/text_encoder_check.py make $fam --ckpt $W/ckpt-$fam --inputs $W/in-$fam --reference $W/ref-$fam.npy 2>&1 | tail -4; echo "make $fam rc $?"
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['weight_map']; ks=sorted(m); print(len(ks), [k for k in ks if 'layers.0.self_attn.q_proj' in k or k.endswith('norm.weight') and 'layers' not in k][:6])" $W/ckpt-$fam/model.safetensors.index.json
  grep -o '"rope[^}]*}\?' $W/ckpt-$fam/config.json | head -4
  /usr/bin/time -v sh .gpu/rt/run.sh compile .gpu/R1/te/$G/model.onnx --target h100 --weights $W/ckpt-$fam --out $W/art-$fam --json > $OUT/compile-$fam.json 2> $OUT/compile-$fam.log; echo "compile $fam rc $?"
  grep -v '^\s' $OUT/compile-$fam.log | grep -E "weights:|compiled|error|expected" | cut -c1-600; grep -E "Elapsed|Maximum resident" $OUT/compile-$fam.log
  sh .gpu/rt/run.sh $W/art-$fam --inputs $W/in-$fam --out $W/out-$fam > $OUT/run-$fam.log 2>&1; echo "run $fam rc $?"
  tail -4 $OUT/run-$fam.log | cut -c1-300
  python3 bench/gpu/checkpoint_check.py compare --reference $W/ref-$fam.npy --compiled $W/out-$fam/output_prompt_embeds.npy | tee $OUT/compare-$fam.json
  rm -rf $W/ckpt-$fam $W/art-$fam
done
