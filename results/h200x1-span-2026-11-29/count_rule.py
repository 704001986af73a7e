"""What a tighter counting rule would have reported: for each tolerance, each
configuration's figure per sweep from the runs whose probe is within it of the
sweep's fastest, and how far that figure moves across sweeps of one group
(new*, old*, s*).

    python count_rule.py 'FOLDER/*/runs.csv'
"""
import pandas as pd, glob, numpy as np, sys
rows=[]
for f in sorted(glob.glob(sys.argv[1])):
    d=pd.read_csv(f); d['sweep']=f.split('/')[-2]; rows.append(d)
d=pd.concat(rows)
d=d[d.status=='ok']
d['cfg']=d.run_id.str.split('-b10').str[0].str.replace('sinebench-','')
d['grp']=d.sweep.str.rstrip('0123456789')
for tol in [0.03,0.05,0.08,0.1,0.15,0.2,None]:
    out=[]
    for (cfg,grp),x in d.groupby(['cfg','grp']):
        meds=[]
        for s,y in x.groupby('sweep'):
            p=y.host_probe_ms
            keep = y if tol is None else y[p<=p.min()*(1+tol)]
            meds.append((np.median(keep.ms_per_update_median), len(keep)))
        m=[a for a,_ in meds]
        out.append(f"{cfg}/{grp}: {max(m)/min(m)-1:6.1%} n={[b for _,b in meds]}")
    print(tol, " | ".join(out))
