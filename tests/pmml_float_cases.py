"""x-mathContext="float" documents written by sklearn2pmml 0.133.1 for tiny XGBoost models
(2-3 trees), with the outputs JPMML-Evaluator 1.7.7 (jpmml-evaluator 0.16.0, the reference
for x-mathContext, which pypmml ignores) returns for ROWS. Regenerate with the same export and
`jpmml_evaluator.make_evaluator(doc).evaluateAll(pandas.DataFrame(ROWS))`."""

from __future__ import annotations

NAN = float("nan")

ROWS: dict[str, list[float]] = {
    "a": [
        0.051289,
        2.039621,
        1.837082,
        NAN,
        -0.446954,
        -0.791076,
        0.85459,
        -0.084097,
        1.120328,
        -2.770987,
        2.349823,
        -0.144648,
        1.020568,
        -0.20485,
        -0.568648,
        0.694665,
        1.23677,
        -0.303795,
        -0.229179,
        1.028548,
        -1.305511,
        -2.271575,
        0.592473,
        -1.005849,
    ],
    "b": [
        -2.880511,
        -1.22108,
        -0.701396,
        -1.789804,
        -2.238696,
        NAN,
        -0.4169729,
        -0.349698,
        -1.115394,
        0.577491,
        1.075854,
        -0.450016,
        0.817002,
        1.564313,
        -0.310435,
        -1.220273,
        0.521476,
        0.371319,
        1.648219,
        -1.926871,
        -0.992419,
        -1.25725,
        -2.601022,
        0.189652,
    ],
    "c": [
        0.791706,
        -1.108185,
        2.078471,
        1.232887,
        0.941065,
        0.602561,
        1.433504,
        NAN,
        0.920894,
        0.904165,
        -2.651578,
        0.520545,
        -0.375632,
        1.172284,
        -0.658593,
        -0.027361,
        0.514277,
        -1.314393,
        0.897895,
        -0.157445,
        0.738724,
        -0.782756,
        1.629302,
        0.907803,
    ],
}

DOCS: dict[str, str] = {}
#: Per document, each output column JPMML reports (NaN where missing).
EXPECTED: dict[str, dict[str, list[float]]] = {}
DOCS["binary"] = (
    '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/><DataDictionary><DataFi'
    'eld name="y" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/'
    '></DataField><DataField name="a" optype="continuous" dataType="float"><Value value="NaN"'
    ' property="missing"/></DataField><DataField name="b" optype="continuous" dataType="float'
    '"><Value value="NaN" property="missing"/></DataField></DataDictionary><MiningModel funct'
    'ionName="classification" algorithmName="XGBoost (GBTree)" x-mathContext="float"><MiningS'
    'chema><MiningField name="y" usageType="target"/><MiningField name="a"/><MiningField name'
    '="b"/></MiningSchema><Segmentation multipleModelMethod="modelChain" missingPredictionTre'
    'atment="returnMissing"><Segment id="1"><True/><MiningModel functionName="regression" x-m'
    'athContext="float"><MiningSchema><MiningField name="a"/><MiningField name="b"/></MiningS'
    'chema><Output><OutputField name="xgbValue" optype="continuous" dataType="float" isFinalR'
    'esult="false"/></Output><Targets><Target rescaleConstant="-0.6856564"/></Targets><Segmen'
    'tation multipleModelMethod="sum" missingPredictionTreatment="returnMissing"><Segment id='
    '"1"><True/><TreeModel functionName="regression" noTrueChildStrategy="returnLastPredictio'
    'n" x-mathContext="float"><MiningSchema><MiningField name="a"/><MiningField name="b"/></M'
    'iningSchema><Node score="-0.35623586"><True/><Node score="-0.20346443"><SimplePredicate '
    'field="b" operator="lessThan" value="-0.4169729"/><Node score="0.82174855"><SimplePredic'
    'ate field="a" operator="lessThan" value="-0.18124633"/></Node></Node><Node score="-0.057'
    '200514"><SimplePredicate field="b" operator="lessThan" value="0.52827394"/></Node></Node'
    '></TreeModel></Segment><Segment id="2"><True/><TreeModel functionName="regression" noTru'
    'eChildStrategy="returnLastPrediction" x-mathContext="float"><MiningSchema><MiningField n'
    'ame="a"/><MiningField name="b"/></MiningSchema><Node score="-0.29908392"><True/><Node sc'
    'ore="-0.31449103"><SimplePredicate field="b" operator="lessThan" value="-0.4169729"/><No'
    'de score="0.50174683"><SimplePredicate field="a" operator="lessThan" value="0.19286446"/'
    '></Node></Node><Node score="-0.043277472"><SimplePredicate field="b" operator="lessThan"'
    ' value="0.52827394"/></Node></Node></TreeModel></Segment></Segmentation></MiningModel></'
    'Segment><Segment id="2"><True/><RegressionModel functionName="classification" normalizat'
    'ionMethod="logit" x-mathContext="float"><MiningSchema><MiningField name="y" usageType="t'
    'arget"/><MiningField name="xgbValue"/></MiningSchema><Output><OutputField name="probabil'
    'ity(0)" optype="continuous" dataType="float" feature="probability" value="0"/><OutputFie'
    'ld name="probability(1)" optype="continuous" dataType="float" feature="probability" valu'
    'e="1"/></Output><RegressionTable intercept="0.0" targetCategory="1"><NumericPredictor na'
    'me="xgbValue" coefficient="1.0"/></RegressionTable><RegressionTable intercept="0.0" targ'
    'etCategory="0"/></RegressionModel></Segment></Segmentation></MiningModel></PMML>'
)
EXPECTED["binary"] = {
    "y": [
        0.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        1.0,
        1.0,
        0.0,
        0.0,
    ],
    "probability(0)": [
        0.5956503748893738,
        0.7691667079925537,
        0.7691667079925537,
        0.7691667079925537,
        0.34573519229888916,
        0.7926504611968994,
        0.6870006918907166,
        0.6870006918907166,
        0.7691667079925537,
        0.7926504611968994,
        0.7926504611968994,
        0.5956503748893738,
        0.7926504611968994,
        0.7926504611968994,
        0.6870006918907166,
        0.7691667079925537,
        0.6870006918907166,
        0.6870006918907166,
        0.7926504611968994,
        0.7691667079925537,
        0.34573519229888916,
        0.34573519229888916,
        0.7691667079925537,
        0.6870006918907166,
    ],
    "probability(1)": [
        0.4043496251106262,
        0.23083330690860748,
        0.23083330690860748,
        0.23083330690860748,
        0.6542648077011108,
        0.20734956860542297,
        0.31299930810928345,
        0.31299930810928345,
        0.23083330690860748,
        0.20734956860542297,
        0.20734956860542297,
        0.4043496251106262,
        0.20734956860542297,
        0.20734956860542297,
        0.31299930810928345,
        0.23083330690860748,
        0.31299930810928345,
        0.31299930810928345,
        0.20734956860542297,
        0.23083330690860748,
        0.6542648077011108,
        0.6542648077011108,
        0.23083330690860748,
        0.31299930810928345,
    ],
}
DOCS["multiclass"] = (
    '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/><DataDictionary><DataFi'
    'eld name="y" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/'
    '><Value value="2"/></DataField><DataField name="a" optype="continuous" dataType="float">'
    '<Value value="NaN" property="missing"/></DataField><DataField name="b" optype="continuou'
    's" dataType="float"><Value value="NaN" property="missing"/></DataField><DataField name="'
    'c" optype="continuous" dataType="float"><Value value="NaN" property="missing"/></DataFie'
    'ld></DataDictionary><MiningModel functionName="classification" algorithmName="XGBoost (G'
    'BTree)" x-mathContext="float"><MiningSchema><MiningField name="y" usageType="target"/><M'
    'iningField name="a"/><MiningField name="b"/><MiningField name="c"/></MiningSchema><Segme'
    'ntation multipleModelMethod="modelChain" missingPredictionTreatment="returnMissing"><Seg'
    'ment id="1"><True/><MiningModel functionName="regression" x-mathContext="float"><MiningS'
    'chema><MiningField name="a"/></MiningSchema><Output><OutputField name="xgbValue(0)" opty'
    'pe="continuous" dataType="float" isFinalResult="false"/></Output><Targets><Target rescal'
    'eConstant="0.0050126314"/></Targets><Segmentation multipleModelMethod="sum" missingPredi'
    'ctionTreatment="returnMissing"><Segment id="1"><True/><TreeModel functionName="regressio'
    'n" noTrueChildStrategy="returnLastPrediction" x-mathContext="float"><MiningSchema><Minin'
    'gField name="a"/></MiningSchema><Node score="0.39837"><True/><Node score="-0.1703238"><S'
    'implePredicate field="a" operator="lessThan" value="0.6173391"/></Node></Node></TreeMode'
    'l></Segment><Segment id="2"><True/><TreeModel functionName="regression" noTrueChildStrat'
    'egy="returnLastPrediction" x-mathContext="float"><MiningSchema><MiningField name="a"/></'
    'MiningSchema><Node score="0.24585532"><True/><Node score="-0.2056467"><SimplePredicate f'
    'ield="a" operator="lessThan" value="0.14287092"/></Node></Node></TreeModel></Segment></S'
    'egmentation></MiningModel></Segment><Segment id="2"><True/><MiningModel functionName="re'
    'gression" x-mathContext="float"><MiningSchema><MiningField name="b"/></MiningSchema><Out'
    'put><OutputField name="xgbValue(1)" optype="continuous" dataType="float" isFinalResult="'
    'false"/></Output><Targets><Target rescaleConstant="0.0050126314"/></Targets><Segmentatio'
    'n multipleModelMethod="sum" missingPredictionTreatment="returnMissing"><Segment id="1"><'
    'True/><TreeModel functionName="regression" noTrueChildStrategy="returnLastPrediction" x-'
    'mathContext="float"><MiningSchema><MiningField name="b"/></MiningSchema><Node score="-0.'
    '1504544"><True/><Node score="0.27540895"><SimplePredicate field="b" operator="lessThan" '
    'value="-0.4169729"/></Node></Node></TreeModel></Segment><Segment id="2"><True/><TreeMode'
    'l functionName="regression" noTrueChildStrategy="returnLastPrediction" x-mathContext="fl'
    'oat"><MiningSchema><MiningField name="b"/></MiningSchema><Node score="-0.12868457"><True'
    '/><Node score="0.20092298"><SimplePredicate field="b" operator="lessThan" value="-0.4169'
    '729"/></Node></Node></TreeModel></Segment></Segmentation></MiningModel></Segment><Segmen'
    't id="3"><True/><MiningModel functionName="regression" x-mathContext="float"><MiningSche'
    'ma><MiningField name="c"/></MiningSchema><Output><OutputField name="xgbValue(2)" optype='
    '"continuous" dataType="float" isFinalResult="false"/></Output><Targets><Target rescaleCo'
    'nstant="-0.010025144"/></Targets><Segmentation multipleModelMethod="sum" missingPredicti'
    'onTreatment="returnMissing"><Segment id="1"><True/><TreeModel functionName="regression" '
    'noTrueChildStrategy="returnLastPrediction" x-mathContext="float"><MiningSchema><MiningFi'
    'eld name="c"/></MiningSchema><Node score="-0.1919947"><True/><Node score="0.28535298"><S'
    'implePredicate field="c" operator="lessThan" value="0.10352776"/></Node></Node></TreeMod'
    'el></Segment><Segment id="2"><True/><TreeModel functionName="regression" noTrueChildStra'
    'tegy="returnLastPrediction" x-mathContext="float"><MiningSchema><MiningField name="c"/><'
    '/MiningSchema><Node score="-0.13610159"><True/><Node score="0.27198073"><SimplePredicate'
    ' field="c" operator="lessThan" value="-0.3774743"/></Node></Node></TreeModel></Segment><'
    '/Segmentation></MiningModel></Segment><Segment id="4"><True/><RegressionModel functionNa'
    'me="classification" normalizationMethod="softmax" x-mathContext="float"><MiningSchema><M'
    'iningField name="y" usageType="target"/><MiningField name="xgbValue(0)"/><MiningField na'
    'me="xgbValue(1)"/><MiningField name="xgbValue(2)"/></MiningSchema><Output><OutputField n'
    'ame="probability(0)" optype="continuous" dataType="float" feature="probability" value="0'
    '"/><OutputField name="probability(1)" optype="continuous" dataType="float" feature="prob'
    'ability" value="1"/><OutputField name="probability(2)" optype="continuous" dataType="flo'
    'at" feature="probability" value="2"/></Output><RegressionTable intercept="0.0" targetCat'
    'egory="0"><NumericPredictor name="xgbValue(0)" coefficient="1.0"/></RegressionTable><Reg'
    'ressionTable intercept="0.0" targetCategory="1"><NumericPredictor name="xgbValue(1)" coe'
    'fficient="1.0"/></RegressionTable><RegressionTable intercept="0.0" targetCategory="2"><N'
    'umericPredictor name="xgbValue(2)" coefficient="1.0"/></RegressionTable></RegressionMode'
    "l></Segment></Segmentation></MiningModel></PMML>"
)
EXPECTED["multiclass"] = {
    "y": [
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        2.0,
        0.0,
        0.0,
        2.0,
        1.0,
        0.0,
        1.0,
        2.0,
        1.0,
        1.0,
    ],
    "probability(0)": [
        0.2283928096294403,
        0.3638298809528351,
        0.45085597038269043,
        0.45085597038269043,
        0.2283928096294403,
        0.318973571062088,
        0.5650548338890076,
        0.318973571062088,
        0.45085597038269043,
        0.318973571062088,
        0.4347308278083801,
        0.2283928096294403,
        0.5005833506584167,
        0.318973571062088,
        0.21707895398139954,
        0.408841997385025,
        0.5650548338890076,
        0.21707895398139954,
        0.318973571062088,
        0.408841997385025,
        0.2283928096294403,
        0.17094063758850098,
        0.31736522912979126,
        0.318973571062088,
    ],
    "probability(1)": [
        0.5355902314186096,
        0.3075977861881256,
        0.3811734914779663,
        0.3811734914779663,
        0.5355902314186096,
        0.3514051139354706,
        0.22442881762981415,
        0.3514051139354706,
        0.3811734914779663,
        0.3514051139354706,
        0.17266665399074554,
        0.5355902314186096,
        0.1988219916820526,
        0.3514051139354706,
        0.23915039002895355,
        0.3456530272960663,
        0.22442881762981415,
        0.23915039002895355,
        0.3514051139354706,
        0.3456530272960663,
        0.5355902314186096,
        0.40086260437965393,
        0.4738324284553528,
        0.3514051139354706,
    ],
    "probability(2)": [
        0.2360169142484665,
        0.3285723328590393,
        0.16797053813934326,
        0.16797053813934326,
        0.2360169142484665,
        0.3296213746070862,
        0.21051639318466187,
        0.3296213746070862,
        0.16797053813934326,
        0.3296213746070862,
        0.3926025331020355,
        0.2360169142484665,
        0.30059459805488586,
        0.3296213746070862,
        0.5437706112861633,
        0.2455049604177475,
        0.21051639318466187,
        0.5437706112861633,
        0.3296213746070862,
        0.2455049604177475,
        0.2360169142484665,
        0.4281967580318451,
        0.20880226790905,
        0.3296213746070862,
    ],
}
DOCS["regression"] = (
    '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/><DataDictionary><DataFi'
    'eld name="y" optype="continuous" dataType="float"/><DataField name="a" optype="continuou'
    's" dataType="float"><Value value="NaN" property="missing"/></DataField><DataField name="'
    'c" optype="continuous" dataType="float"><Value value="NaN" property="missing"/></DataFie'
    'ld></DataDictionary><MiningModel functionName="regression" algorithmName="XGBoost (GBTre'
    'e)" x-mathContext="float"><MiningSchema><MiningField name="y" usageType="target"/><Minin'
    'gField name="a"/><MiningField name="c"/></MiningSchema><Targets><Target field="y" rescal'
    'eConstant="-0.4832237"/></Targets><Segmentation multipleModelMethod="sum" missingPredict'
    'ionTreatment="returnMissing"><Segment id="1"><True/><TreeModel functionName="regression"'
    ' noTrueChildStrategy="returnLastPrediction" x-mathContext="float"><MiningSchema><MiningF'
    'ield name="a"/><MiningField name="c"/></MiningSchema><Node score="1.4913676"><True/><Nod'
    'e score="-1.7842277"><SimplePredicate field="a" operator="lessThan" value="0.07584712"/>'
    '<Node score="-0.58882457"><SimplePredicate field="c" operator="lessThan" value="1.201396'
    '6"/></Node></Node><Node score="0.7297057"><SimplePredicate field="a" operator="lessThan"'
    ' value="0.7061414"/></Node></Node></TreeModel></Segment><Segment id="2"><True/><TreeMode'
    'l functionName="regression" noTrueChildStrategy="returnLastPrediction" x-mathContext="fl'
    'oat"><MiningSchema><MiningField name="a"/><MiningField name="c"/></MiningSchema><Node sc'
    'ore="0.96974725"><True/><Node score="-1.5531716"><SimplePredicate field="a" operator="le'
    'ssThan" value="-0.55648977"/><Node score="-0.75237954"><SimplePredicate field="c" operat'
    'or="lessThan" value="1.5790294"/></Node></Node><Node score="0.15232766"><SimplePredicate'
    ' field="a" operator="lessThan" value="0.24861269"/></Node></Node></TreeModel></Segment><'
    'Segment id="3"><True/><TreeModel functionName="regression" noTrueChildStrategy="returnLa'
    'stPrediction" x-mathContext="float"><MiningSchema><MiningField name="a"/></MiningSchema>'
    '<Node score="0.743319"><True/><Node score="-0.5486058"><SimplePredicate field="a" operat'
    'or="lessThan" value="-0.6462043"/><Node score="-1.1233706"><SimplePredicate field="a" op'
    'erator="lessThan" value="-1.8371787"/></Node></Node><Node score="0.14937922"><SimplePred'
    'icate field="a" operator="lessThan" value="0.59974706"/></Node></Node></TreeModel></Segm'
    "ent></Segmentation></MiningModel></PMML>"
)
EXPECTED["regression"] = {
    "y": [
        -0.7703413963317871,
        2.721210241317749,
        2.721210241317749,
        2.721210241317749,
        -0.7703413963317871,
        -2.3730337619781494,
        2.721210241317749,
        -1.9657444953918457,
        2.721210241317749,
        -2.947798490524292,
        2.721210241317749,
        -0.7703413963317871,
        2.721210241317749,
        -0.7703413963317871,
        -1.675048589706421,
        1.9595482349395752,
        2.721210241317749,
        -0.7703413963317871,
        -0.7703413963317871,
        2.721210241317749,
        -2.3730337619781494,
        -2.947798490524292,
        1.3656084537506104,
        -2.3730337619781494,
    ],
}
