"""Batch schedulers as pure builders of commands and parsers of their (exit code, stdout, stderr).

``slurm``: sbatch, squeue, sacct, scontrol, scancel, and finding a job again after a crash;
``slurm_states``: Slurm job states; ``slurm_options``: resource options and environment
defaults; ``slurm_script``: the batch wrapper of a ``slurm`` step; ``pycompss``: enqueue_compss;
``remote_files``: exit files and log chunks read in one command. Nothing here does I/O: the
engine runs the commands through a transport and hands the results to the parsers.
"""
