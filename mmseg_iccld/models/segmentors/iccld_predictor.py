"""ICCLD's prediction: K DDIM steps from seeded noise to the mask estimate D reads, S draws
averaged, and the uncertainty of their mean (the test-time half of ``ICCLD``)."""
from typing import List, Optional

import torch
from mmengine.structures import PixelData
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor


class ICCLDPredictor:
    """Test-time methods of :class:`ICCLD`, which provides ``encode``, ``decoder_inputs``,
    ``diffusion``, ``decode_head``, ``test_cfg``, ``in_phase2``, ``chain_start`` and
    ``run_chain``; mmseg's
    ``EncoderDecoder`` provides ``inference``, ``slide_inference`` and the post-processing
    this extends.
    """

    @property
    def num_inference_steps(self) -> int:
        """K, the DDIM steps of prediction; always 0 in phase 1."""
        return self.test_cfg.get('num_inference_steps', 3) if self.in_phase2 else 0

    @property
    def num_samples(self) -> int:
        """S, the noise draws averaged by prediction."""
        return self.test_cfg.get('num_samples', 1)


    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """z0 = E(x); K DDIM steps from seeded noise to m_hat0; logits = D(z0 ++ m_hat0, skips).

        Args:
            inputs: Images or slide crops, (N, 3, H, W).
            batch_img_metas: Image meta information.

        Returns:
            Logits (S = 1) or log of the mean softmax over S draws (S > 1), (N, C, H, W).
        """
        stages, image_latent = self.encode(inputs)
        estimates = self._test_mask_estimates(stages, image_latent, self.num_samples)
        head_inputs = self.decoder_inputs(inputs, stages, image_latent, estimates)
        if self.num_samples == 1:
            return self.decode_head.predict(head_inputs[0], batch_img_metas, self.test_cfg)
        mean_prob = 0
        for head_input in head_inputs:
            logits = self.decode_head.predict(head_input, batch_img_metas, self.test_cfg)
            mean_prob = mean_prob + logits.softmax(dim=1) / len(head_inputs)
        # the log keeps argmax and softmax of the mean; tiny keeps later resizing finite
        return mean_prob.clamp_min(torch.finfo(mean_prob.dtype).tiny).log()

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """D's logits for the first noise draw, without post-processing.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Unused.

        Returns:
            Logits, (N, C, H / 4, W / 4).
        """
        stages, image_latent = self.encode(inputs)
        mask_estimate = self._test_mask_estimates(stages, image_latent, num_samples=1)[0]
        return self.decode_head.forward(stages, image_latent, mask_estimate)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """mmseg's post-processing, plus ``uncertainty`` (1, H, W) when S > 1.

        The uncertainty is the entropy of the mean softmax, at the original image size.

        Args:
            seg_logits: Output of ``inference``, (N, C, H, W).
            data_samples: Seg data samples, or None.

        Returns:
            Data samples with ``seg_logits``, ``pred_sem_seg`` and, for S > 1,
            ``uncertainty``.
        """
        data_samples = super().postprocess_result(seg_logits, data_samples)
        if self.num_samples > 1:
            for sample in data_samples:
                prob = sample.seg_logits.data.softmax(dim=0)
                entropy = -torch.special.xlogy(prob, prob).sum(dim=0, keepdim=True)
                sample.set_data({'uncertainty': PixelData(data=entropy)})
        return data_samples

    def _test_mask_estimates(self, stages: List[Tensor], image_latent: Tensor,
                             num_samples: int) -> List[Optional[Tensor]]:
        """The mask latents D reads at test time, one per draw; [None] (m_hat0 = 0) at K = 0.

        Every image gets the same draws of m_T from a generator seeded by ``test_cfg.seed``,
        so a prediction depends neither on the batch nor on earlier calls. A refining chain
        (``refine_strength``) starts from D's m_hat0 = 0 decode of ``stages``, noised with
        these draws.

        Args:
            stages: Encoder stages of the view that carries the chain.
            image_latent: z0, (N, C_z, h, w).
            num_samples: S, the number of draws.

        Returns:
            S tensors m_hat0, (N, C_m, h, w), or [None].
        """
        num_steps = self.num_inference_steps
        if num_steps == 0:
            return [None]
        noise = self.diffusion.seeded_noise(image_latent, num_samples,
                                            self.test_cfg.get('seed', 0))
        start = self.chain_start(stages, image_latent)
        return [self.run_chain(image_latent, draw, num_steps, start) for draw in noise]
